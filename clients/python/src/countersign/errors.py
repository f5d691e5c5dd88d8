"""Exceptions: one hierarchy, mirroring the API's error codes (DESIGN.md, src/core/errors.ts).

    CountersignError
    ├── ApiError                 countersign answered with an error (.status, .code, .body)
    │   ├── ValidationError      400 invalid_request: .issues name the fields
    │   ├── AuthenticationError  401: missing or wrong signature, stale clock
    │   ├── ForbiddenError       403 (AgentRevokedError: the agent's kill switch is pulled)
    │   ├── NotFoundError        404
    │   ├── ConflictError        409: e.g. cancelling a proposal no longer pending (.proposal)
    │   ├── RateLimitedError     429 rate_limited: .retry_after seconds, .limit
    │   └── UnavailableError     503 unavailable / store_full: .retry_after seconds
    ├── ConnectionFailed         no answer (refused, reset, timed out)
    ├── CallbackVerificationError  a callback that is not countersign's: do not act on it
    └── ApprovalError            requires_approval: the function did not run (.proposal)
        ├── ApprovalDenied       denied by a person, or by the policy (rejected)
        ├── ApprovalExpired      nobody decided before the proposal's deadline
        ├── ApprovalCancelled    withdrawn (by the agent, or an admin)
        └── ApprovalTimedOut     still pending when the decorator's timeout passed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:
    from .types import Proposal


class CountersignError(Exception):
    """Everything this package raises on purpose."""


@dataclass(frozen=True)
class FieldIssue:
    path: str
    code: str
    message: str


class ApiError(CountersignError):
    """countersign answered with an error: `status` is the HTTP status, `code` the API's code."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class ValidationError(ApiError):
    """400: the request is wrong; `issues` say which field and why. Nothing was stored."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(status, code, message, body)
        raw = body.get("issues") if isinstance(body, dict) else None
        self.issues: List[FieldIssue] = [
            FieldIssue(str(i.get("path", "")), str(i.get("code", "")), str(i.get("message", "")))
            for i in (raw if isinstance(raw, list) else [])
            if isinstance(i, dict)
        ]


class AuthenticationError(ApiError):
    """401: the server did not accept the signature (wrong secret or agent id, clock more than
    300 s off, a body changed after signing). `reason` is the server's `code` when it sends one
    (missing_credentials, stale_timestamp, bad_signature, invalid_token), else None."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(status, code, message, body)
        reason = body.get("code") if isinstance(body, dict) else None
        self.reason: Optional[str] = reason if isinstance(reason, str) else None


class ForbiddenError(ApiError):
    """403: authenticated, but not allowed."""


class AgentRevokedError(ForbiddenError):
    """403 agent_revoked: an admin pulled this agent's kill switch; proposals are refused until restored."""


class NotFoundError(ApiError):
    """404: no such proposal (or not this agent's)."""


class ConflictError(ApiError):
    """409: the proposal is not in a state that allows this (e.g. cancelling a decided one)."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(status, code, message, body)
        from .types import Proposal

        raw = body.get("proposal") if isinstance(body, dict) else None
        self.proposal: Optional[Proposal] = Proposal.from_json(raw) if isinstance(raw, dict) else None


class _RetryAfter(ApiError):
    def __init__(self, status: int, code: str, message: str, body: Any = None, retry_after: Optional[float] = None) -> None:
        super().__init__(status, code, message, body)
        from_body = body.get("retry_after_seconds") if isinstance(body, dict) else None
        seconds = from_body if isinstance(from_body, (int, float)) and not isinstance(from_body, bool) else retry_after
        #: Seconds to wait before trying again (the body's retry_after_seconds, else Retry-After).
        self.retry_after: Optional[float] = float(seconds) if seconds is not None else None


class RateLimitedError(_RetryAfter):
    """429 rate_limited: over one of the agent's limits (policy `limits:`); nothing was stored."""

    def __init__(self, status: int, code: str, message: str, body: Any = None, retry_after: Optional[float] = None) -> None:
        super().__init__(status, code, message, body, retry_after)
        limit = body.get("limit") if isinstance(body, dict) else None
        self.limit: Optional[str] = limit if isinstance(limit, str) else None


class UnavailableError(_RetryAfter):
    """503: countersign cannot serve right now (its store is down or full); try again later."""


class ConnectionFailed(CountersignError):
    """No HTTP answer: refused, reset, or timed out."""


class CallbackVerificationError(CountersignError):
    """A callback whose signature, timestamp or agent does not check out: do not act on it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"countersign callback refused: {reason}")
        self.reason = reason


class ApprovalError(CountersignError):
    """requires_approval did not run the function; `proposal` is the proposal as last read."""

    def __init__(self, message: str, proposal: "Proposal") -> None:
        super().__init__(message)
        self.proposal = proposal


class ApprovalDenied(ApprovalError):
    """A person denied it, or the policy did (status `denied` or `rejected`)."""


class ApprovalExpired(ApprovalError):
    """Nobody decided before the proposal's deadline."""


class ApprovalCancelled(ApprovalError):
    """The proposal was withdrawn before anyone approved it."""


class ApprovalTimedOut(ApprovalError):
    """Still pending when the decorator stopped waiting (it cancels the proposal unless told not to)."""


_BY_STATUS = {400: ValidationError, 401: AuthenticationError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError}


def api_error(status: int, body: Any, method: str, path: str, retry_after: Optional[float]) -> ApiError:
    """The exception for one error answer."""
    code = body.get("error") if isinstance(body, dict) else None
    code = code if isinstance(code, str) else "http_error"
    text = body.get("message") if isinstance(body, dict) else None
    message = f"{method} {path}: {status} {text if isinstance(text, str) else f'HTTP {status}'}"
    if code == "agent_revoked":
        return AgentRevokedError(status, code, message, body)
    if status == 429 or code == "rate_limited":
        return RateLimitedError(status, code, message, body, retry_after)
    if status == 503:
        return UnavailableError(status, code, message, body, retry_after)
    cls = _BY_STATUS.get(status, ApiError)
    return cls(status, code, message, body)
