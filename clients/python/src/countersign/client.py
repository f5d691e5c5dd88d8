"""The agent client: signs every request with the agent's secret exactly as the TypeScript client
does (src/client/index.ts, src/core/signing.ts) and verifies countersign's signed callbacks."""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import quote, urlencode, urlsplit

from . import __version__
from .errors import ApiError, CallbackVerificationError, ConnectionFailed, api_error
from .signing import AGENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, check_signature, request_target, signed_headers
from .types import FINAL_STATUSES, ActionSpec, CallbackPayload, ContextSpec, Proposal, Submitted

# The longest single long poll the server accepts, seconds.
MAX_POLL_SECONDS = 120
DEFAULT_POLL_SECONDS = 25
# Between reads for a token (and login) on its way: 10 ms, doubling, at most 1 s.
_HAND_OVER_FIRST_PAUSE = 0.01
_HAND_OVER_MAX_PAUSE = 1.0

Headers = Mapping[str, Any]

# countersign reads JSON numbers as doubles: a larger integer arrives as another number.
_EXACT_INT = 2**53 - 1


def _inexact_integer(value: Any, path: str) -> Optional[str]:
    """The path of the first integer countersign would not hold exactly, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return path if abs(value) > _EXACT_INT else None
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _inexact_integer(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found is not None:
            return found
    return None


def _hand_over_coming(p: Proposal) -> bool:
    """Approved, and the token will come to this agent's read but has not yet: not recorded yet
    (no `execution`: the mode is not known) or recorded for poll mode (its login still being
    made). An executor's or a callback's execution never hands a token to a read."""
    if p.status != "approved" or p.execution_token is not None:
        return False
    return p.execution is None or p.execution.get("mode") == "poll"


def _header(headers: Headers, name: str) -> Optional[str]:
    getter = getattr(headers, "get", None)
    value = getter(name) if callable(getter) else None
    if value is None:
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name), None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


class Client:
    """One agent's client.

    url: where countersign listens, e.g. http://127.0.0.1:3000 (a path prefix is kept and signed).
    agent, secret: the agent's id and HMAC secret (the variable its policy entry names in secret_env).
    callback_url: the agent's callback URL as the policy lists it; verify_callback checks the
      signature over its path unless given the path a callback arrived at.
    timeout: seconds per request (wait's long polls add their own time).
    long_poll_seconds: how long one of wait()'s long polls lasts at most (1 to 120).
    """

    def __init__(
        self,
        url: str,
        agent: str,
        secret: str,
        *,
        callback_url: Optional[str] = None,
        timeout: float = 30.0,
        long_poll_seconds: int = DEFAULT_POLL_SECONDS,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("countersign.Client: the agent secret is empty")
        if not agent:
            raise ValueError("countersign.Client: the agent id is empty")
        self.base = url.rstrip("/")
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"countersign.Client: url must be http(s)://host[:port], not {url!r}")
        self._prefix = parts.path
        self.agent = agent
        self._secret = secret
        self.callback_url = callback_url
        self.timeout = timeout
        self.long_poll_seconds = max(1, min(MAX_POLL_SECONDS, int(long_poll_seconds)))
        self._now = now

    def __repr__(self) -> str:
        return f"countersign.Client(url={self.base!r}, agent={self.agent!r})"

    # The agent API -----------------------------------------------------------------------------

    def propose(
        self,
        intent: str,
        action: ActionSpec,
        *,
        context: Optional[ContextSpec] = None,
        idempotency_key: Optional[str] = None,
    ) -> Submitted:
        """Submits an action. `created` is False when an earlier proposal had this idempotency_key."""
        body: Dict[str, Any] = {"intent": intent, "action": dict(action)}
        if context is not None:
            body["context"] = dict(context)
        # Stored, shown to the approver and handed back as another number: refused here instead.
        inexact = _inexact_integer(body["action"], "action") or _inexact_integer(body.get("context"), "context")
        if inexact is not None:
            raise ValueError(f"countersign: {inexact} is an integer beyond 2**53 - 1, which countersign (JSON numbers as doubles) would change; pass it as a string")
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        status, answer = self._request("POST", "/v1/proposals", body)
        return Submitted.from_json(answer, created=status == 201)

    def get(self, proposal_id: str) -> Proposal:
        """The proposal as it is now. In poll mode, the first read of an approved proposal once its
        token is ready carries `execution_token` (and `credential`, when the rule issues one)."""
        return Proposal.from_json(self._request("GET", self._path(proposal_id))[1])

    def wait(self, proposal_id: str, timeout: float = 60.0, until: str = "decided") -> Proposal:
        """Waits until the proposal is decided (`until="decided"`: no longer pending) or finished
        (`"final"`), or `timeout` seconds pass; then returns it as it is. Never raises for a
        timeout: check `status`.

        Poll mode: an approved proposal's token (and login) are handed out once, a moment after
        the approval; wait() keeps reading until that read and returns it at once, whatever
        `until` says: act on it, then report_outcome. It stops early when the proposal moves on
        without them (another reader took them, the login could not be made, the kill switch).
        """
        if until not in ("decided", "final"):
            raise ValueError('until must be "decided" or "final"')
        deadline = self._now() + timeout
        path = self._path(proposal_id)

        def done(p: Proposal) -> bool:
            return p.final if until == "final" else p.status != "pending"

        # A plain read first: a long poll started on an approved proposal whose token is on its
        # way would sleep until the status changes, which a token waiting for its reader never does.
        p = Proposal.from_json(self._request("GET", path)[1])
        hand_over_reads = 0
        while True:
            if p.execution_token is not None or p.status in FINAL_STATUSES:
                return p
            left = max(0.0, deadline - self._now())
            if _hand_over_coming(p):
                if left == 0:
                    return p
                time.sleep(min(_HAND_OVER_MAX_PAUSE, _HAND_OVER_FIRST_PAUSE * 2**hand_over_reads, left))
                hand_over_reads += 1
                p = Proposal.from_json(self._request("GET", path)[1])
                continue
            hand_over_reads = 0
            if done(p) or left == 0:
                return p
            seconds = min(math.ceil(left), self.long_poll_seconds)
            # `status`: what this client last read, so a decision landing before the poll begins answers at once.
            p = Proposal.from_json(self._request("GET", f"{path}/wait?timeout={seconds}&status={p.status}", extra_timeout=seconds)[1])

    def cancel(self, proposal_id: str, reason: Optional[str] = None) -> Proposal:
        """Withdraws a pending proposal. One no longer pending raises ConflictError (with `.proposal`)."""
        body: Dict[str, Any] = {} if reason is None else {"reason": reason}
        return Proposal.from_json(self._request("POST", f"{self._path(proposal_id)}/cancel", body)[1])

    def report_outcome(
        self,
        proposal_id: str,
        token: str,
        status: str,
        *,
        status_code: Optional[int] = None,
        detail: Optional[str] = None,
    ) -> Proposal:
        """For an agent that executes the action itself: `succeeded` or `failed`, with the execution
        token it was given. `detail` is shown to people (the server redacts secrets in it)."""
        if status not in ("succeeded", "failed"):
            raise ValueError('status must be "succeeded" or "failed"')
        body: Dict[str, Any] = {"token": token, "status": status}
        if status_code is not None:
            body["status_code"] = status_code
        if detail is not None:
            body["detail"] = detail
        return Proposal.from_json(self._request("POST", f"{self._path(proposal_id)}/outcome", body)[1])

    def search_audit(self, **search: Union[str, int, None]) -> Dict[str, Any]:
        """This agent's own audit history: q, status, proposal_id, since, until, limit, cursor."""
        query = urlencode({k: str(v) for k, v in search.items() if v is not None and v != ""})
        answer: Dict[str, Any] = self._request("GET", f"/v1/audit?{query}")[1]
        return answer

    # Callbacks ---------------------------------------------------------------------------------

    def verify_callback(self, headers: Headers, body: Union[bytes, str], path: Optional[str] = None) -> CallbackPayload:
        """Checks a callback from countersign (signed with this agent's secret, within 300 s) and
        returns its payload. Pass the raw body exactly as received (re-serialised JSON will not
        verify) and the path (with query) it arrived at (http.server: `self.path`); without
        `path`, the path of `callback_url` is used. Raises CallbackVerificationError."""
        if _header(headers, AGENT_HEADER) != self.agent:
            raise CallbackVerificationError("it is addressed to another agent")
        target = path if path is not None else (request_target(self.callback_url) if self.callback_url else None)
        if target is None:
            raise ValueError("verify_callback needs the path the callback arrived at, or the callback_url option")
        reason = check_signature(self._secret, _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER), "POST", target, body, self._now())
        if reason is not None:
            raise CallbackVerificationError(reason)
        try:
            parsed = json.loads(body)
        except ValueError:
            raise CallbackVerificationError("the body is not JSON") from None
        if not isinstance(parsed, dict):
            raise CallbackVerificationError("the body is not a JSON object")
        return CallbackPayload.from_json(parsed)

    # HTTP --------------------------------------------------------------------------------------

    @staticmethod
    def _path(proposal_id: str) -> str:
        return f"/v1/proposals/{quote(proposal_id, safe='')}"

    def _request(self, method: str, path: str, body: Any = None, extra_timeout: float = 0) -> Tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        # Sign the path as the server receives it, with any prefix in the base URL.
        headers = signed_headers(self.agent, self._secret, method, self._prefix + path, raw, self._now())
        headers["user-agent"] = f"countersign-python/{__version__}"
        headers["accept"] = "application/json"
        req = urllib.request.Request(self.base + path, data=raw if method != "GET" else None, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout + extra_timeout) as res:
                status, parsed = res.status, _parse(res.read())
            if not isinstance(parsed, dict):
                # Not countersign answering (a proxy's page, say): never read it as a proposal.
                raise ApiError(status, "bad_response", f"{method} {path}: {status} but the body is not a JSON object", parsed)
            return status, parsed
        except urllib.error.HTTPError as e:
            with e:
                parsed = _parse(e.read())
                retry_after = e.headers.get("retry-after") if e.headers is not None else None
            raise api_error(e.code, parsed, method, path, _seconds(retry_after)) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise ConnectionFailed(f"{method} {self.base}{path}: {reason}") from e


def _parse(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

