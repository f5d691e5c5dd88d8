"""Request signing, byte for byte as countersign's src/core/signing.ts:

    X-Countersign-Signature: v2=<hex HMAC-SHA256(secret, "v2:" + ts + ":" + METHOD + ":" + path + ":" + raw body)>

`path` is the request target as the server receives it (path and query, unchanged). The same
scheme signs countersign's callbacks to the agent, so one module serves both directions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Dict, Optional, Union
from urllib.parse import urlsplit

SIGNATURE_HEADER = "x-countersign-signature"
TIMESTAMP_HEADER = "x-countersign-timestamp"
AGENT_HEADER = "x-countersign-agent"
MAX_SKEW_SECONDS = 300

# ASCII digits only: Python's \d also matches other scripts' digits, which the server refuses.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

Body = Union[bytes, str]


def _bytes(body: Body) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, timestamp: Union[int, str], method: str, path: str, body: Body) -> str:
    """The `v2=<hex>` signature of one request (or callback)."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(f"v2:{timestamp}:{method.upper()}:{path}:".encode("utf-8"))
    mac.update(_bytes(body))
    return "v2=" + mac.hexdigest()


def request_target(url: str) -> str:
    """The path and query of a URL, as a server sees them in its request line."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def signed_headers(agent: str, secret: str, method: str, path: str, body: Body, now: float) -> Dict[str, str]:
    """The headers of a signed request from `agent`; `now` in seconds since the epoch."""
    timestamp = int(now // 1)
    return {
        "content-type": "application/json",
        AGENT_HEADER: agent,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, method, path, body),
    }


def check_signature(
    secret: str,
    timestamp_header: Optional[str],
    signature_header: Optional[str],
    method: str,
    path: str,
    body: Body,
    now: float,
) -> Optional[str]:
    """None when the signature and its timestamp (within 300 s either way) check out, else the
    reason, named as the server names it: missing_headers, bad_timestamp, stale_timestamp,
    bad_signature. Constant-time."""
    if timestamp_header is None or signature_header is None:
        return "missing_headers"
    if not _TIMESTAMP.fullmatch(timestamp_header):
        return "bad_timestamp"
    if abs(now - int(timestamp_header)) > MAX_SKEW_SECONDS:
        return "stale_timestamp"
    expected = sign(secret, timestamp_header, method, path, body).encode("utf-8")
    if not hmac.compare_digest(signature_header.encode("utf-8"), expected):
        return "bad_signature"
    return None
