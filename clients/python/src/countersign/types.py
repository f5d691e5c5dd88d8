"""The agent API's JSON shapes (DESIGN.md; src/client/types.ts is the TypeScript twin).

Requests are TypedDicts (plain dicts you write); answers are frozen dataclasses read leniently:
a field a newer server adds is kept in `raw`, never an error. Times are ISO-8601 strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, TypedDict, Union

JsonValue = Any
Status = Literal["pending", "approved", "denied", "expired", "cancelled", "rejected", "executing", "succeeded", "failed"]
Risk = Literal["low", "medium", "high", "critical"]

FINAL_STATUSES = frozenset({"denied", "expired", "cancelled", "rejected", "succeeded", "failed"})


class _ActionRequired(TypedDict):
    tool: str
    operation: str
    target: str


class ActionSpec(_ActionRequired, total=False):
    """What the agent wants to do: `tool`, `operation`, `target` and its `parameters`."""

    parameters: Dict[str, JsonValue]


class Value(TypedDict, total=False):
    amount: float
    currency: str


class ContextSpec(TypedDict, total=False):
    """What the policy weighs besides the action (all optional)."""

    data_sensitivity: Literal["public", "internal", "confidential", "restricted"]
    destination: Literal["internal", "external"]
    environment: str
    reversible: bool
    value: Value


def _s(v: Any) -> Optional[str]:
    return v if isinstance(v, str) else None


def _dict(v: Any) -> Dict[str, Any]:
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class Action:
    tool: str
    operation: str
    target: str
    parameters: Dict[str, JsonValue]

    @staticmethod
    def from_json(j: Mapping[str, Any]) -> "Action":
        return Action(str(j.get("tool", "")), str(j.get("operation", "")), str(j.get("target", "")), dict(_dict(j.get("parameters"))))


@dataclass(frozen=True)
class Decision:
    """What the policy said: `effect` allow / deny / approve, the rule, the risk, who may decide."""

    effect: str
    risk: str
    rule: str
    reasons: List[str]
    route: Optional[str]
    approvers: Optional[str]
    approvals_required: int
    ttl_seconds: int
    editable: Optional[List[str]]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @staticmethod
    def from_json(j: Mapping[str, Any]) -> "Decision":
        editable = j.get("editable")
        return Decision(
            effect=str(j.get("effect", "")),
            risk=str(j.get("risk", "")),
            rule=str(j.get("rule", "")),
            reasons=[str(r) for r in j.get("reasons") or []],
            route=_s(j.get("route")),
            approvers=_s(j.get("approvers")),
            approvals_required=int(j.get("approvals_required") or 0),
            ttl_seconds=int(j.get("ttl_seconds") or 0),
            editable=[str(e) for e in editable] if isinstance(editable, list) else None,
            raw=dict(j),
        )


@dataclass(frozen=True)
class Approval:
    person: str
    platform: str
    vote: str
    reason: Optional[str]
    at: str


@dataclass(frozen=True)
class Resolution:
    status: str
    by: Optional[str]
    reason: Optional[str]
    at: str


@dataclass(frozen=True)
class Change:
    """One edited parameter: `key` went from `old` to `new` (JSON's `from` and `to`)."""

    key: str
    old: JsonValue
    new: JsonValue


@dataclass(frozen=True)
class Revision:
    """An approver's edit ("approve with edits"): the proposal's `action` is now the revised one."""

    number: int
    by: str
    platform: str
    at: str
    changes: List[Change]
    superseded: List[str]

    @staticmethod
    def from_json(j: Mapping[str, Any]) -> "Revision":
        return Revision(
            number=int(j.get("number") or 0),
            by=str(j.get("by", "")),
            platform=str(j.get("platform", "")),
            at=str(j.get("at", "")),
            changes=[Change(str(c.get("key", "")), c.get("from"), c.get("to")) for c in j.get("changes") or [] if isinstance(c, dict)],
            superseded=[str(s) for s in j.get("superseded") or []],
        )

    def describe(self) -> str:
        """E.g. `approved with edits by bob: amount 2480 -> 2000`."""
        changes = ", ".join(f"{c.key} {c.old!r} -> {c.new!r}" for c in self.changes)
        return f"approved with edits by {self.by}: {changes}"


@dataclass(frozen=True)
class TaskCredential:
    """A login made for this one task (`credentials:` in the rule). Handed over once; never log it."""

    issuer: str
    username: str
    password: str = field(repr=False)
    url: str = field(repr=False)
    expires_at: str = ""

    @staticmethod
    def from_json(j: Any) -> Optional["TaskCredential"]:
        if not isinstance(j, dict):
            return None
        return TaskCredential(str(j.get("issuer", "")), str(j.get("username", "")), str(j.get("password", "")), str(j.get("url", "")), str(j.get("expires_at", "")))


@dataclass(frozen=True)
class Proposal:
    """A proposal as the agent API shows it.

    `action` is what was approved and what must run: it differs from `proposed_action` when an
    approver edited it (`revision` then says what changed and by whom). `execution_token` (and
    `credential`) are on the one read that hands them over, in poll mode only.
    """

    id: str
    agent: str
    status: str
    intent: str
    action: Action
    proposed_action: Action
    revision: Optional[Revision]
    decision: Decision
    approvals: List[Approval]
    resolution: Optional[Resolution]
    created_at: str
    expires_at: Optional[str]
    idempotency_key: Optional[str]
    context: Dict[str, Any]
    execution: Optional[Dict[str, Any]]
    execution_token: Optional[str] = field(default=None, repr=False)
    credential: Optional[TaskCredential] = field(default=None, repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def revised(self) -> bool:
        """An approver changed the action before approving it."""
        return self.revision is not None

    @staticmethod
    def from_json(j: Mapping[str, Any]) -> "Proposal":
        action = Action.from_json(_dict(j.get("action")))
        proposed = j.get("proposed_action")
        resolution = j.get("resolution")
        revision = j.get("revision")
        execution = j.get("execution")
        token = j.get("execution_token")
        return Proposal(
            id=str(j.get("id", "")),
            agent=str(j.get("agent", "")),
            status=str(j.get("status", "")),
            intent=str(j.get("intent", "")),
            action=action,
            proposed_action=Action.from_json(proposed) if isinstance(proposed, dict) else action,
            revision=Revision.from_json(revision) if isinstance(revision, dict) else None,
            decision=Decision.from_json(_dict(j.get("decision"))),
            approvals=[
                Approval(str(a.get("person", "")), str(a.get("platform", "")), str(a.get("vote", "")), _s(a.get("reason")), str(a.get("at", "")))
                for a in j.get("approvals") or []
                if isinstance(a, dict)
            ],
            resolution=Resolution(str(resolution.get("status", "")), _s(resolution.get("by")), _s(resolution.get("reason")), str(resolution.get("at", "")))
            if isinstance(resolution, dict)
            else None,
            created_at=str(j.get("created_at", "")),
            expires_at=_s(j.get("expires_at")),
            idempotency_key=_s(j.get("idempotency_key")),
            context=dict(_dict(j.get("context"))),
            execution=dict(execution) if isinstance(execution, dict) else None,
            execution_token=token if isinstance(token, str) else None,
            credential=TaskCredential.from_json(j.get("credential")),
            raw=dict(j),
        )


@dataclass(frozen=True)
class Submitted:
    """The answer to propose(): `created` is False for an earlier proposal with the same idempotency_key."""

    id: str
    status: str
    decision: Decision
    expires_at: Optional[str]
    created: bool

    @staticmethod
    def from_json(j: Mapping[str, Any], created: bool) -> "Submitted":
        return Submitted(str(j.get("id", "")), str(j.get("status", "")), Decision.from_json(_dict(j.get("decision"))), _s(j.get("expires_at")), created)


@dataclass(frozen=True)
class CallbackPayload:
    """What countersign POSTs to the agent's callback_url, once verify_callback checked it."""

    proposal_id: str
    agent: str
    status: str
    current_status: str
    action: Action
    resolution: Optional[Resolution]
    approvers: List[str]
    execution: Optional[Dict[str, Any]]
    execution_token: Optional[str] = field(default=None, repr=False)
    credential: Optional[TaskCredential] = field(default=None, repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @staticmethod
    def from_json(j: Mapping[str, Any]) -> "CallbackPayload":
        resolution = j.get("resolution")
        execution = j.get("execution")
        token = j.get("execution_token")
        return CallbackPayload(
            proposal_id=str(j.get("proposal_id", "")),
            agent=str(j.get("agent", "")),
            status=str(j.get("status", "")),
            current_status=str(j.get("current_status", "")),
            action=Action.from_json(_dict(j.get("action"))),
            resolution=Resolution(str(resolution.get("status", "")), _s(resolution.get("by")), _s(resolution.get("reason")), str(resolution.get("at", "")))
            if isinstance(resolution, dict)
            else None,
            approvers=[str(a) for a in j.get("approvers") or []],
            execution=dict(execution) if isinstance(execution, dict) else None,
            execution_token=token if isinstance(token, str) else None,
            credential=TaskCredential.from_json(j.get("credential")),
            raw=dict(j),
        )


HeaderValue = Union[str, List[str], None]
