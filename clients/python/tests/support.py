"""What the tests share: the package on sys.path, the server the vitest side started
(test/e2e/python-client.redis.test.ts passes it in the environment), and a person deciding in
the real console over HTTP, signed in with a console key, as the console tests do.

Without COUNTERSIGN_URL (run alone: `python3 -m unittest discover -s clients/python/tests`) the
tests that need the server or the TypeScript vectors are skipped.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unittest
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlencode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import countersign  # noqa: E402

URL = os.environ.get("COUNTERSIGN_URL")
AGENT = os.environ.get("COUNTERSIGN_AGENT", "")
SECRET = os.environ.get("COUNTERSIGN_AGENT_SECRET", "")
VECTORS_FILE = os.environ.get("COUNTERSIGN_TEST_VECTORS")

live = unittest.skipUnless(URL, "no countersign server: COUNTERSIGN_URL is not set (npx vitest run test/e2e/python-client.redis.test.ts sets it)")
with_vectors = unittest.skipUnless(VECTORS_FILE, "no vectors from the TypeScript code: COUNTERSIGN_TEST_VECTORS is not set")


def vectors() -> Dict[str, Any]:
    assert VECTORS_FILE is not None
    with open(VECTORS_FILE, encoding="utf-8") as f:
        return json.load(f)


def client(**options: Any) -> countersign.Client:
    assert URL is not None
    return countersign.Client(URL, AGENT, SECRET, **options)


_made = 0


def unique(prefix: str) -> str:
    """Distinct intents and targets: the same signed bytes within one second are one request."""
    global _made
    _made += 1
    return f"{prefix}-{os.getpid()}-{_made}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_plain = urllib.request.build_opener(_NoRedirect)


class Console:
    """One person signed in to the console with their key (form, cookie, CSRF token)."""

    def __init__(self, person: Optional[str] = None, key: Optional[str] = None) -> None:
        assert URL is not None
        self.base = URL
        person = person or os.environ["COUNTERSIGN_TEST_APPROVER"]
        key = key or os.environ["COUNTERSIGN_TEST_APPROVER_KEY"]
        status, headers, page = self._open("GET", "/console/login")
        login_cookie = self._cookie(headers, None)
        csrf = self._match(r'name="csrf" value="([^"]+)"', page.decode())
        status, headers, _ = self._open("POST", "/console/login", {"csrf": csrf, "person": person, "key": key}, login_cookie)
        if status != 303:
            raise AssertionError(f"console sign-in as {person}: HTTP {status}")
        self.cookie = self._cookie(headers, "cs_session")
        self.csrf = self._match(r'<meta name="csrf-token" content="([^"]+)">', self.page("/console"))

    def page(self, path: str) -> str:
        return self._open("GET", path, cookie=self.cookie)[2].decode()

    def decide(self, proposal_id: str, vote: str, reason: str = "") -> Dict[str, Any]:
        form = {"csrf": self.csrf, "vote": vote, "reason": reason, "confirm": "yes"}
        return json.loads(self._open("POST", f"/console/proposals/{proposal_id}/decide", form, self.cookie)[2])

    def approve_with_edits(self, proposal_id: str, values: Dict[str, str]) -> Dict[str, Any]:
        version = self._match(r'name="version" value="(\d+)"', self.page(f"/console/proposals/{proposal_id}"))
        form = {"csrf": self.csrf, "version": version, **{f"edit:{k}": v for k, v in values.items()}}
        return json.loads(self._open("POST", f"/console/proposals/{proposal_id}/edit", form, self.cookie)[2])

    def _open(self, method: str, path: str, form: Optional[Dict[str, str]] = None, cookie: Optional[str] = None) -> Tuple[int, Any, bytes]:
        """(status, headers, body), the connection closed."""
        headers = {"accept": "application/json" if method == "POST" and path != "/console/login" else "text/html", "origin": self.base}
        if cookie:
            headers["cookie"] = cookie
        data = None
        if form is not None:
            data = urlencode(form).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with _plain.open(req, timeout=30) as res:
                return res.status, res.headers, res.read()
        except urllib.error.HTTPError as e:
            with e:
                if e.code in (302, 303):
                    return e.code, e.headers, e.read()
                raise AssertionError(f"console {method} {path}: HTTP {e.code} {e.read()[:300]!r}") from None

    @staticmethod
    def _cookie(headers: Any, name: Optional[str]) -> str:
        for header in headers.get_all("set-cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for morsel in jar.values():
                if name is None or morsel.key == name:
                    return f"{morsel.key}={morsel.value}"
        raise AssertionError(f"no {name or 'session'} cookie in the answer")

    @staticmethod
    def _match(pattern: str, text: str) -> str:
        m = re.search(pattern, text)
        if m is None:
            raise AssertionError(f"{pattern} not found in the console page")
        return m.group(1)
