"""`requires_approval`: a tool function that runs only once a person (or the policy) approved it.

    @requires_approval(client, tool="payments", operation="refund", target="stripe:{customer}")
    def refund(customer: str, invoice: str, amount: float, approval: Approval) -> str:
        '''Refund {amount} EUR of invoice {invoice}: charged twice.'''
        return payments.refund(invoice, amount, idempotency_key=approval.token)

A call proposes the action with the call's arguments as its parameters (intent from `intent=` or
the docstring's first paragraph, `{name}` filled in from the arguments), waits, and runs the
function only when approved, with the APPROVED arguments: an approver may have edited them
("approve with edits"), and then the function gets the edited values, `approval.revised` is True
and a warning is logged. The outcome is reported: succeeded, or failed with the exception's
message (the exception is raised again). Denied, expired, cancelled or still pending after
`timeout` (the proposal is then cancelled): an ApprovalError subclass, and the function never ran.

Poll mode only: the execution token is handed to the agent's read, so the agent must have no
`callback_url` and the tool no executor in the policy.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import string
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union, cast

from .client import Client
from .errors import ApiError, ApprovalCancelled, ApprovalDenied, ApprovalError, ApprovalExpired, ApprovalTimedOut, ConflictError, CountersignError
from .types import Change, ContextSpec, Proposal, Submitted, TaskCredential

log = logging.getLogger("countersign")

R = TypeVar("R")
Arguments = Dict[str, Any]
Template = Union[str, Callable[[Arguments], str]]

_STOPPED_WAITING = "the agent stopped waiting (interrupted or cut off)"

# The detail reported for a failure is cut here (the server keeps 1000 characters at most).
_DETAIL_MAX = 500


@dataclass(frozen=True)
class Approval:
    """What the decorated function gets (as its `approval` argument, or current_approval())."""

    proposal: Proposal
    #: The single-use execution token: pass it to the system that acts, if it checks tokens.
    token: str = field(repr=False)
    #: The task's own login, when the rule has `credentials:` (never log it).
    credential: Optional[TaskCredential] = field(repr=False)
    #: The arguments the function runs with: the approved ones, edits included.
    arguments: Arguments

    def __repr__(self) -> str:
        # Argument names only: an excluded one (an API key kept out of the proposal) never
        # reaches countersign and must not reach a log line or a traceback through this either.
        return f"Approval(proposal={self.proposal!r}, arguments=<{', '.join(self.arguments)}>)"

    @property
    def revised(self) -> bool:
        """An approver changed the arguments before approving (see `changes`)."""
        return self.proposal.revision is not None

    @property
    def changes(self) -> List[Change]:
        return list(self.proposal.revision.changes) if self.proposal.revision is not None else []

    @property
    def approved_by(self) -> List[str]:
        return [a.person for a in self.proposal.approvals if a.vote == "approve"]


_current: contextvars.ContextVar[Optional[Approval]] = contextvars.ContextVar("countersign_approval", default=None)


def current_approval() -> Approval:
    """The approval of the decorated call running now (raises LookupError outside one)."""
    approval = _current.get()
    if approval is None:
        raise LookupError("current_approval() is only available inside a function decorated with requires_approval")
    return approval


class _Lenient(dict):  # type: ignore[type-arg]
    """format_map that leaves a `{name}` it does not know as it is (docstrings mention braces)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: Template, args: Arguments, what: str) -> str:
    if callable(template):
        text = template(args)
        if not isinstance(text, str):
            raise TypeError(f"requires_approval: {what}(arguments) must return a string")
        return text
    try:
        return string.Formatter().vformat(template, (), _Lenient(args))
    except (ValueError, AttributeError, IndexError, KeyError) as e:
        raise ValueError(f"requires_approval: {what} template {template!r}: {e}") from None


def _docstring_intent(func: Callable[..., Any]) -> Optional[str]:
    doc = inspect.getdoc(func)
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n")[0].split())


def _outcome_detail(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


class _Gate:
    """The decorator's state for one function."""

    def __init__(self, func: Callable[..., Any], client: Client, options: Dict[str, Any]) -> None:
        self.func = func
        self.client = client
        self.o = options
        self.sig = inspect.signature(func)
        params = list(self.sig.parameters.values())
        self.approval_param: Optional[str] = options["approval_param"] if options["approval_param"] in self.sig.parameters else None
        # What the caller passes: the signature without the injected approval.
        self.call_sig = self.sig.replace(parameters=[p for p in params if p.name != self.approval_param])
        skip = set(options["exclude"])
        if params and params[0].name in ("self", "cls"):
            skip.add(params[0].name)
        self.skip = skip
        self.var_keyword = next((p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        self.operation = options["operation"] or func.__name__
        # A docstring is prose: one whose braces are not `{name}` fields is used as it is.
        self.intent_is_doc = options["intent"] is None
        intent = options["intent"] if options["intent"] is not None else _docstring_intent(func)
        if intent is None:
            raise TypeError(f"requires_approval({func.__qualname__}): give intent= or a docstring: people read it to decide")
        self.intent: Template = intent

    def arguments(self, args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Arguments:
        bound = self.call_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def parameters(self, arguments: Arguments) -> Dict[str, Any]:
        """The proposal's parameters: the arguments by name, **kwargs merged in, JSON only."""
        params: Dict[str, Any] = {}
        for name, value in arguments.items():
            if name in self.skip:
                continue
            if name == self.var_keyword:
                params.update({k: v for k, v in value.items() if k not in self.skip})
            else:
                params[name] = value
        for name, value in params.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise TypeError(
                    f"requires_approval({self.func.__qualname__}): argument {name!r} ({type(value).__name__}) is not JSON: "
                    f"pass plain values, or name it in exclude=[...] to leave it out of the proposal"
                ) from None
        return params

    def propose(self, arguments: Arguments) -> Submitted:
        o = self.o
        params = self.parameters(arguments)
        context = o["context"](arguments) if callable(o["context"]) else o["context"]
        key = _fill(o["idempotency_key"], arguments, "idempotency_key") if o["idempotency_key"] is not None else None
        try:
            intent = _fill(self.intent, arguments, "intent")
        except ValueError:
            if not self.intent_is_doc:
                raise
            intent = cast(str, self.intent)
        submitted = self.client.propose(
            intent,
            {"tool": o["tool"], "operation": self.operation, "target": _fill(o["target"], arguments, "target"), "parameters": params},
            context=context,
            idempotency_key=key,
        )
        log.info("countersign: proposed %s (%s.%s): %s", submitted.id, o["tool"], self.operation, submitted.status)
        return submitted

    def obtain(self, arguments: Arguments, on_proposed: Optional[Callable[[str], None]] = None) -> Approval:
        """Proposes, waits, and returns the approval (with the approved arguments) or raises.
        `on_proposed` gets the proposal's id as soon as there is one (for abandon())."""
        submitted = self.propose(arguments)
        if on_proposed is not None:
            on_proposed(submitted.id)
        try:
            if self.o["on_proposed"] is not None:
                self.o["on_proposed"](submitted)
            p = self.client.wait(submitted.id, timeout=self.o["timeout"])
        except BaseException:
            # Interrupted or cut off while waiting: the function will not run, so nobody should
            # be left approving it. Best effort: the error that stopped the wait is what we raise.
            try:
                self.client.cancel(submitted.id, _STOPPED_WAITING)
            except CountersignError:
                pass
            raise
        if p.status == "pending":
            if self.o["cancel_on_timeout"]:
                try:
                    p = self.client.cancel(p.id, f"the agent stopped waiting after {self.o['timeout']} s")
                except ConflictError:
                    # Decided between the last read and the cancel: take that decision (and its token).
                    return self.approval(self.client.wait(p.id, timeout=10), arguments)
            raise ApprovalTimedOut(f"{self.func.__qualname__} was not run: nobody decided on proposal {p.id} within {self.o['timeout']} s", p)
        return self.approval(p, arguments)

    def abandon(self, proposal_id: str) -> None:
        """The caller stopped waiting (a cancelled coroutine): nobody should approve a call that will not run."""
        try:
            self.client.cancel(proposal_id, _STOPPED_WAITING)
        except CountersignError:
            pass

    def not_run(self, approval: Approval) -> None:
        """An approval nobody will act on (its caller went away): reported, not left executing."""
        self.report(approval, ApprovalError(f"{self.func.__qualname__} was not run: the caller stopped waiting", approval.proposal), None)

    def approval(self, p: Proposal, arguments: Arguments) -> Approval:
        who = f" by {p.resolution.by}" if p.resolution is not None and p.resolution.by else ""
        why = f": {p.resolution.reason}" if p.resolution is not None and p.resolution.reason else ""
        name = self.func.__qualname__
        if p.status in ("denied", "rejected"):
            raise ApprovalDenied(f"{name} was not run: proposal {p.id} {p.status}{who}{why}", p)
        if p.status == "expired":
            raise ApprovalExpired(f"{name} was not run: proposal {p.id} expired before anyone decided", p)
        if p.status == "cancelled":
            raise ApprovalCancelled(f"{name} was not run: proposal {p.id} cancelled{who}{why}", p)
        if p.status == "pending":
            raise ApprovalTimedOut(f"{name} was not run: nobody decided on proposal {p.id} within {self.o['timeout']} s", p)
        if p.execution_token is None:
            mode = (p.execution or {}).get("mode")
            where = (
                "countersign runs this tool itself (an executor in the policy): do not decorate it"
                if mode in ("executor", "gateway")
                else "no execution token came to this read (another copy of this agent took it, or the agent has a callback_url: the decorator needs poll mode)"
            )
            raise ApprovalError(f"{name} was not run: proposal {p.id} is {p.status}; {where}", p)
        approved = dict(arguments)
        for key, value in p.action.parameters.items():
            if key in approved and key not in self.skip and key != self.var_keyword:
                approved[key] = value
            elif self.var_keyword is not None and key not in self.skip:
                approved[self.var_keyword] = {**approved.get(self.var_keyword, {}), key: value}
        if p.revision is not None:
            log.warning("countersign: %s runs as approved, not as proposed: %s", name, p.revision.describe())
        return Approval(proposal=p, token=p.execution_token, credential=p.credential, arguments=approved)

    def call_args(self, approval: Approval) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
        values = dict(approval.arguments)
        if self.approval_param is not None:
            values[self.approval_param] = approval
        ordered = {n: values[n] for n in self.sig.parameters if n in values}
        bound = inspect.BoundArguments(self.sig, ordered)  # type: ignore[arg-type,unused-ignore]
        return bound.args, bound.kwargs

    def report(self, approval: Approval, error: Optional[BaseException], result: Any) -> None:
        p = approval.proposal
        if error is None:
            detail = self.o["detail"](result) if self.o["detail"] is not None else None
            status = "succeeded"
        else:
            detail, status = _outcome_detail(error), "failed"
        try:
            self.client.report_outcome(p.id, approval.token, status, detail=detail)
        except (ApiError, CountersignError) as e:
            # The action ran (or failed) already: raising here would read as "not done" and invite
            # a repeat. The proposal stays `executing` until its token expires; say so loudly.
            log.error("countersign: could not report %s for %s: %s", status, p.id, e)


class _ThreadedWait:
    """gate.obtain in a worker thread for a coroutine. Cancelling the coroutine (asyncio.wait_for,
    a task cancelled) does not stop that thread: abandon() cancels the proposal, or, when the
    approval already came (or comes later), reports it as not run, so nobody approves a call that
    never runs and no token is left `executing` until it expires."""

    def __init__(self, gate: _Gate, arguments: Arguments) -> None:
        self.gate = gate
        self.arguments = arguments
        self.lock = threading.Lock()
        self.abandoned = False
        self.proposal_id: Optional[str] = None
        self.approval: Optional[Approval] = None

    def _proposed(self, proposal_id: str) -> None:
        with self.lock:
            self.proposal_id = proposal_id
            abandoned = self.abandoned
        if abandoned:  # cancelled while proposing
            self.gate.abandon(proposal_id)

    def obtain(self) -> Approval:
        approval = self.gate.obtain(self.arguments, self._proposed)
        with self.lock:
            abandoned = self.abandoned
            if not abandoned:
                self.approval = approval
        if abandoned:
            self.gate.not_run(approval)
        return approval

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True
            approval, proposal_id = self.approval, self.proposal_id
        if approval is not None:
            threading.Thread(target=self.gate.not_run, args=(approval,), daemon=True).start()
        elif proposal_id is not None:
            threading.Thread(target=self.gate.abandon, args=(proposal_id,), daemon=True).start()


def requires_approval(
    client: Client,
    *,
    tool: str,
    target: Template,
    operation: Optional[str] = None,
    intent: Optional[Template] = None,
    context: Union[ContextSpec, Callable[[Arguments], ContextSpec], None] = None,
    idempotency_key: Optional[Template] = None,
    exclude: Iterable[str] = (),
    timeout: float = 900.0,
    cancel_on_timeout: bool = True,
    on_proposed: Optional[Callable[[Submitted], None]] = None,
    approval_param: str = "approval",
    detail: Optional[Callable[[Any], Optional[str]]] = None,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Wraps a tool function (or coroutine function) so that each call needs approval first.

    tool, operation (default: the function's name), target: the action as the policy sees it;
    `target`, `intent` and `idempotency_key` are templates filled from the call's arguments
    (`"stripe:{customer}"`) or callables given the arguments dict. intent defaults to the
    docstring's first paragraph. context: the proposal's context (or a callable of the
    arguments). exclude: arguments left out of the proposal's parameters (they must be JSON
    otherwise). timeout: seconds to wait for a decision. on_proposed: called with the
    submission (e.g. to print the console link). detail: the outcome's text from the result.
    A parameter named `approval_param` ("approval") receives the Approval; callers leave it out
    (so the wrapped function's arguments are not type-checked, its return type is).
    """

    options = dict(
        tool=tool, target=target, operation=operation, intent=intent, context=context, idempotency_key=idempotency_key,
        exclude=tuple(exclude), timeout=timeout, cancel_on_timeout=cancel_on_timeout, on_proposed=on_proposed,
        approval_param=approval_param, detail=detail,
    )  # fmt: skip

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        gate = _Gate(func, client, options)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                waiter = _ThreadedWait(gate, gate.arguments(args, kwargs))
                try:
                    approval = await asyncio.to_thread(waiter.obtain)
                except asyncio.CancelledError:
                    waiter.abandon()
                    raise
                call_args, call_kwargs = gate.call_args(approval)
                token = _current.set(approval)
                try:
                    result = await func(*call_args, **call_kwargs)
                except BaseException as e:
                    await asyncio.to_thread(gate.report, approval, e, None)
                    raise
                finally:
                    _current.reset(token)
                await asyncio.to_thread(gate.report, approval, None, result)
                return result

            return cast(Callable[..., R], run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            approval = gate.obtain(gate.arguments(args, kwargs))
            call_args, call_kwargs = gate.call_args(approval)
            token = _current.set(approval)
            try:
                result = func(*call_args, **call_kwargs)
            except BaseException as e:
                gate.report(approval, e, None)
                raise
            finally:
                _current.reset(token)
            gate.report(approval, None, result)
            return result

        return cast(Callable[..., R], run)

    return decorate
