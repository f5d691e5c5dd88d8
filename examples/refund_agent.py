"""An agent that asks before it refunds, in Python. Run it next to `npm start` (built-in policy):

    pip install ./clients/python      # or: PYTHONPATH=clients/python/src
    python3 examples/refund_agent.py

Its refund tool is wrapped in `requires_approval`: calling it proposes the refund, waits while a
person decides in the console, runs only once approved (with the APPROVED arguments: an approver
may have edited the amount) and reports the outcome, which then appears in the card's timeline.
Settings: COUNTERSIGN_URL (default http://127.0.0.1:3000), COUNTERSIGN_AGENT (default
demo-agent), COUNTERSIGN_AGENT_SECRET (default: the demo agent's secret from
.countersign/demo-agent-secret). Exit codes: 0 refunded, 3 denied/expired/cancelled, 2 nobody
decided within 15 minutes.
"""

from __future__ import annotations

import logging
import os
import random
import sys

try:
    import countersign
except ImportError:  # run from a clone without installing the package
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "src"))
    import countersign

url = os.environ.get("COUNTERSIGN_URL", "http://127.0.0.1:3000")
agent = os.environ.get("COUNTERSIGN_AGENT", "demo-agent")
secret = os.environ.get("COUNTERSIGN_AGENT_SECRET", "")
secret_file = ".countersign/demo-agent-secret"
if not secret and os.path.exists(secret_file):
    with open(secret_file, encoding="utf-8") as f:
        secret = f.read().strip()
if not secret:
    sys.exit(f"no secret: set COUNTERSIGN_AGENT_SECRET or start countersign once so that {secret_file} exists")

# Prints "approved with edits by …" when an approver changed the amount.
logging.basicConfig(level=logging.WARNING, format="%(message)s")
client = countersign.Client(url, agent, secret)


def show(submitted: countersign.Submitted) -> None:
    print(f"proposed {submitted.id}: {submitted.status} (rule {submitted.decision.rule}, {submitted.decision.risk} risk)", flush=True)
    if submitted.status == "pending":
        print(f"waiting for a person: {url}/console/proposals/{submitted.id}", flush=True)


@countersign.requires_approval(
    client,
    tool="payments",
    operation="refund",
    target="stripe:{customer}",
    idempotency_key="refund-{invoice}",
    context=lambda args: {"data_sensitivity": "confidential", "destination": "external", "reversible": False, "value": {"amount": args["amount"], "currency": args["currency"]}},
    timeout=15 * 60,
    on_proposed=show,
    detail=lambda refund_id: f"refund {refund_id} created",
)
def refund(customer: str, invoice: str, amount: float, currency: str, approval: countersign.Approval) -> str:
    """Refund invoice {invoice} ({amount} {currency}): the customer was charged twice for the same order."""
    # Here the real agent would call the payment provider with the (approved) amount, passing the
    # token along so the provider can check it (GET /.well-known/jwks.json) and spend it
    # (POST /v1/tokens/redeem).
    print(f"approved by {', '.join(approval.approved_by) or 'the policy'}: refunding {amount} {currency} of {invoice} with execution token {approval.token[:12]}…", flush=True)
    return f"re_{invoice}"


def main() -> int:
    invoice = f"INV-{random.randint(1000, 9999)}"
    try:
        refund_id = refund("cus_Q8f2LmA91", invoice, 129.0, "EUR")
    except countersign.ApprovalTimedOut as e:
        print(f"nobody decided: {e}")
        return 2
    except countersign.ApprovalError as e:
        print(f"not refunded: {e}")
        return 3
    print(f"reported: succeeded ({refund_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
