"""requires_approval against the real countersign; people decide in the real console."""

from __future__ import annotations

import asyncio
import threading
import unittest
from typing import Any, Callable, Dict, List, Optional

from support import Console, client, countersign, live, unique

Submitted = countersign.Submitted


def deciding(decide: Callable[[Console, str], Any]) -> Callable[[Submitted], None]:
    """on_proposed: a person decides in the console while the decorator waits."""

    def on_proposed(submitted: Submitted) -> None:
        threading.Thread(target=lambda: decide(Console(), submitted.id), daemon=True).start()

    return on_proposed


def approve(console: Console, proposal_id: str) -> None:
    console.decide(proposal_id, "approve")


@live
class RequiresApproval(unittest.TestCase):
    def setUp(self) -> None:
        self.client = client()
        self.calls: List[Dict[str, Any]] = []
        self.proposed: List[Submitted] = []

    def gate(self, decide: Optional[Callable[[Console, str], Any]] = approve, **options: Any) -> Callable[..., Any]:
        def on_proposed(submitted: Submitted) -> None:
            self.proposed.append(submitted)
            if decide is not None:
                deciding(decide)(submitted)

        options.setdefault("tool", "payments")
        options.setdefault("target", "stripe:{invoice}")
        return countersign.requires_approval(self.client, on_proposed=on_proposed, **options)

    def test_approved_runs_once_with_the_token_and_reports_success(self) -> None:
        @self.gate(detail=lambda result: f"refund {result} created")
        def refund(invoice: str, amount: float, approval: countersign.Approval, currency: str = "EUR") -> str:
            """Refund {amount} {currency} of invoice {invoice}: the customer was charged twice.

            This paragraph is not part of the intent."""
            self.calls.append({"invoice": invoice, "amount": amount, "token": approval.token, "current": countersign.current_approval()})
            return f"re_{invoice}"

        invoice = unique("INV")
        self.assertEqual(refund(invoice, 120.5), f"re_{invoice}")
        [call] = self.calls
        self.assertEqual((call["invoice"], call["amount"]), (invoice, 120.5))
        self.assertTrue(call["token"])
        self.assertIs(call["current"].token, call["token"])
        p = self.client.get(self.proposed[0].id)
        self.assertEqual(p.intent, f"Refund 120.5 EUR of invoice {invoice}: the customer was charged twice.")
        self.assertEqual((p.action.tool, p.action.operation, p.action.target), ("payments", "refund", f"stripe:{invoice}"))
        self.assertEqual(p.action.parameters, {"invoice": invoice, "amount": 120.5, "currency": "EUR"})
        self.assertEqual(p.status, "succeeded")
        self.assertEqual((p.execution or {}).get("outcome"), "succeeded")
        with self.assertRaises(LookupError):
            countersign.current_approval()

    def test_an_excluded_argument_is_not_in_the_approvals_repr(self) -> None:
        # exclude= keeps an argument (an API key, a client object) out of the proposal; the
        # Approval the function gets must not print it either (a log line, a traceback's locals).
        @self.gate(exclude=["api_key"])
        def refund(invoice: str, api_key: str, approval: countersign.Approval) -> None:
            """Refund invoice {invoice}."""
            self.calls.append({"repr": repr(approval), "str": str(approval), "api_key": approval.arguments["api_key"]})

        refund(unique("INV"), "sk_live_do_not_print_me")
        [call] = self.calls
        self.assertEqual(call["api_key"], "sk_live_do_not_print_me")
        self.assertNotIn("sk_live_do_not_print_me", call["repr"] + call["str"])
        self.assertIn("api_key", call["repr"])

    def test_approved_with_edits_runs_with_the_approved_values_and_says_so(self) -> None:
        edit = lambda console, pid: console.approve_with_edits(pid, {"amount": "2000"})  # noqa: E731

        @self.gate(edit, intent="Pay supplier invoice {invoice}")
        def pay(invoice: str, amount: int, memo: str, approval: countersign.Approval) -> None:
            self.calls.append({"amount": amount, "memo": memo, "revised": approval.revised, "changes": approval.changes, "action": approval.proposal.action})

        with self.assertLogs("countersign", "WARNING") as logs:
            pay(unique("SUP"), 2480, memo="SUP-1")
        [call] = self.calls
        self.assertEqual((call["amount"], call["memo"], call["revised"]), (2000, "SUP-1", True))
        self.assertEqual([(c.key, c.old, c.new) for c in call["changes"]], [("amount", 2480, 2000)])
        self.assertEqual(call["action"].parameters["amount"], 2000)
        self.assertIn("approved with edits by alice: amount 2480 -> 2000", "\n".join(logs.output))
        p = self.client.get(self.proposed[0].id)
        self.assertEqual((p.status, p.proposed_action.parameters["amount"], p.action.parameters["amount"]), ("succeeded", 2480, 2000))

    def test_a_failure_is_reported_with_the_exceptions_message_and_raised(self) -> None:
        @self.gate()
        def refund(invoice: str) -> None:
            """Refund invoice {invoice}."""
            raise RuntimeError(f"card issuer declined the refund of {invoice}")

        invoice = unique("INV")
        with self.assertRaisesRegex(RuntimeError, "declined"):
            refund(invoice)
        p = self.client.get(self.proposed[0].id)
        self.assertEqual(p.status, "failed")
        events = self.client.search_audit(proposal_id=p.id, limit=50)["events"]
        self.assertIn(f"RuntimeError: card issuer declined the refund of {invoice}", str([e["data"] for e in events]))

    def test_denied_raises_with_who_and_why_and_the_function_never_runs(self) -> None:
        @self.gate(lambda console, pid: console.decide(pid, "deny", "duplicate of INV-1"))
        def refund(invoice: str) -> None:
            """Refund invoice {invoice}."""
            self.calls.append({})

        with self.assertRaises(countersign.ApprovalDenied) as caught:
            refund(unique("INV"))
        self.assertEqual(self.calls, [])
        self.assertIn("denied by alice: duplicate of INV-1", str(caught.exception))
        self.assertEqual(caught.exception.proposal.status, "denied")

    def test_the_policy_denies_or_allows_without_anyone(self) -> None:
        @self.gate(None, tool="postgres", operation="drop", target="db:{name}")
        def drop(name: str) -> None:
            """Drop database {name}."""
            self.calls.append({})

        with self.assertRaises(countersign.ApprovalDenied) as caught:
            drop(unique("orders"))
        self.assertEqual(caught.exception.proposal.status, "rejected")
        self.assertIn("Dropping databases is never delegated", str(caught.exception.proposal.decision.reasons))

        @self.gate(None, tool="crm", operation="tag", target="invoice:{invoice}", context={"reversible": True, "destination": "internal"})
        def tag(invoice: str, label: str) -> str:
            """Tag invoice {invoice} with {"label": label} in the CRM."""
            return label

        self.assertEqual(tag(unique("INV"), "reviewed"), "reviewed")
        tagged = self.client.get(self.proposed[-1].id)
        self.assertEqual(tagged.status, "succeeded")
        # Braces that are not `{name}` fields: the docstring is the intent as written.
        self.assertEqual(tagged.intent, 'Tag invoice {invoice} with {"label": label} in the CRM.')
        self.assertEqual(self.calls, [])

    def test_expired_and_timed_out_raise_and_a_timed_out_proposal_is_cancelled(self) -> None:
        @self.gate(None, operation="quick")
        def quick(invoice: str) -> None:
            """Quick refund of {invoice}."""
            self.calls.append({})

        with self.assertRaises(countersign.ApprovalExpired):
            quick(unique("INV"))

        @self.gate(None, timeout=1)
        def slow(invoice: str) -> None:
            """Refund invoice {invoice}."""
            self.calls.append({})

        with self.assertRaises(countersign.ApprovalTimedOut) as caught:
            slow(unique("INV"))
        self.assertEqual(caught.exception.proposal.status, "cancelled")
        self.assertEqual(self.client.get(caught.exception.proposal.id).status, "cancelled")
        self.assertEqual(self.calls, [])

    def test_interrupted_while_waiting_the_proposal_is_cancelled(self) -> None:
        def interrupted(submitted: Submitted) -> None:
            self.proposed.append(submitted)
            raise KeyboardInterrupt  # Ctrl-C while the agent waits

        @countersign.requires_approval(self.client, tool="payments", target="stripe:{invoice}", on_proposed=interrupted)
        def refund(invoice: str) -> None:
            """Refund invoice {invoice}."""
            self.calls.append({})

        with self.assertRaises(KeyboardInterrupt):
            refund(unique("INV"))
        self.assertEqual(self.calls, [])
        p = self.client.get(self.proposed[0].id)
        self.assertEqual((p.status, p.resolution.reason if p.resolution else None), ("cancelled", "the agent stopped waiting (interrupted or cut off)"))

    def test_a_coroutine_cancelled_while_waiting_cancels_its_proposal(self) -> None:
        # asyncio.wait_for / a task cancelled: the wait runs in a thread that cancellation does not
        # stop; left alone it kept the proposal open for people to approve a call that never runs.
        @self.gate(None, timeout=5)
        async def refund(invoice: str) -> None:
            """Refund invoice {invoice}."""
            self.calls.append({})

        async def caller() -> None:
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(refund(unique("INV")), 0.3)
            p = await asyncio.to_thread(self.client.wait, self.proposed[0].id, 2)
            self.assertEqual((p.status, p.resolution.reason if p.resolution else None), ("cancelled", "the agent stopped waiting (interrupted or cut off)"))

        asyncio.run(caller())
        self.assertEqual(self.calls, [])

    def test_an_integer_countersign_cannot_hold_exactly_is_refused_before_proposing(self) -> None:
        # countersign reads JSON numbers as doubles: 2**53 + 1 was stored, shown to the approver
        # and handed back as 2**53, and the function ran on another account than it was called with.
        @self.gate()
        def transfer(invoice: str, account: int) -> None:
            """Pay invoice {invoice} to account {account}."""
            self.calls.append({"account": account})

        with self.assertRaisesRegex(ValueError, r"action\.parameters\.account"):
            transfer(unique("INV"), 2**53 + 1)
        self.assertEqual((self.proposed, self.calls), ([], []))

    def test_arguments_that_are_not_json_are_refused_before_proposing_unless_excluded(self) -> None:
        @self.gate(None)
        def refund(invoice: str, session: object) -> None:
            """Refund invoice {invoice}."""

        with self.assertRaisesRegex(TypeError, "argument 'session'"):
            refund(unique("INV"), object())
        self.assertEqual(self.proposed, [])
        with self.assertRaisesRegex(TypeError, "intent= or a docstring"):
            countersign.requires_approval(self.client, tool="t", target="x")(lambda: None)

    def test_a_coroutine_function_and_a_method_with_kwargs(self) -> None:
        edit_memo = lambda console, pid: console.approve_with_edits(pid, {"memo": "checked"})  # noqa: E731
        gate = self.gate(edit_memo, operation="payout")

        class Agent:
            @gate
            async def pay(self, invoice: str, **extra: Any) -> Dict[str, Any]:
                """Pay out {invoice}."""
                return {"invoice": invoice, **extra, "token": countersign.current_approval().token}

        invoice = unique("INV")
        result = asyncio.run(Agent().pay(invoice, memo="first", amount=5))
        self.assertEqual({k: v for k, v in result.items() if k != "token"}, {"invoice": invoice, "memo": "checked", "amount": 5})
        self.assertTrue(result["token"])
        p = self.client.get(self.proposed[0].id)
        self.assertEqual(p.proposed_action.parameters, {"invoice": invoice, "memo": "first", "amount": 5})
        self.assertEqual(p.status, "succeeded")

if __name__ == "__main__":
    unittest.main()
