"""countersign's agent client for Python (standard library only).

    from countersign import Client, requires_approval

See clients/python/README.md. Signing is byte for byte the TypeScript client's
(src/core/signing.ts): v2 = HMAC-SHA256 over "v2:" timestamp ":" METHOD ":" path ":" body.
"""

__version__ = "0.1.0"

from .client import Client
from .decorator import Approval, current_approval, requires_approval
from .errors import (
    AgentRevokedError,
    ApiError,
    ApprovalCancelled,
    ApprovalDenied,
    ApprovalError,
    ApprovalExpired,
    ApprovalTimedOut,
    AuthenticationError,
    CallbackVerificationError,
    ConflictError,
    ConnectionFailed,
    CountersignError,
    FieldIssue,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)
from .signing import check_signature, request_target, sign, signed_headers
from .types import (
    Action,
    ActionSpec,
    CallbackPayload,
    Change,
    ContextSpec,
    Decision,
    Proposal,
    Resolution,
    Revision,
    Submitted,
    TaskCredential,
)

__all__ = [
    "Action", "ActionSpec", "AgentRevokedError", "ApiError", "Approval", "ApprovalCancelled", "ApprovalDenied",
    "ApprovalError", "ApprovalExpired", "ApprovalTimedOut", "AuthenticationError", "CallbackPayload",
    "CallbackVerificationError", "Change", "Client", "ConflictError", "ConnectionFailed", "ContextSpec",
    "CountersignError", "Decision", "FieldIssue", "ForbiddenError", "NotFoundError", "Proposal", "RateLimitedError",
    "Resolution", "Revision", "Submitted", "TaskCredential", "UnavailableError", "ValidationError",
    "check_signature", "current_approval", "request_target", "requires_approval", "sign", "signed_headers",
]
