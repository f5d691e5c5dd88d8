"""The client's calls against the real countersign (signatures checked by the server)."""

from __future__ import annotations

import json
import threading
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict

from support import AGENT, SECRET, URL, Console, client, countersign, live, unique, vectors, with_vectors


def refund(amount: float = 120.0) -> Dict[str, Any]:
    invoice = unique("INV")
    return {
        "intent": f"Refund invoice {invoice}: the customer was charged twice",
        "action": {"tool": "payments", "operation": "refund", "target": f"stripe:{invoice}", "parameters": {"invoice": invoice, "amount": amount}},
        "context": {"destination": "external", "value": {"amount": amount, "currency": "EUR"}},
    }


@live
class AgentApi(unittest.TestCase):
    def setUp(self) -> None:
        self.client = client()

    def test_propose_get_cancel_and_a_second_cancel_conflicts(self) -> None:
        r = refund()
        submitted = self.client.propose(r["intent"], r["action"], context=r["context"])
        self.assertTrue(submitted.created)
        self.assertEqual((submitted.status, submitted.decision.effect, submitted.decision.rule), ("pending", "approve", "refunds"))
        self.assertEqual(submitted.decision.editable, ["amount", "memo"])
        p = self.client.get(submitted.id)
        self.assertEqual((p.id, p.agent, p.status, p.intent), (submitted.id, AGENT, "pending", r["intent"]))
        self.assertEqual(p.action.parameters, r["action"]["parameters"])
        self.assertFalse(p.revised)
        cancelled = self.client.cancel(submitted.id, "no longer needed")
        self.assertEqual(cancelled.status, "cancelled")
        with self.assertRaises(countersign.ConflictError) as caught:
            self.client.cancel(submitted.id)
        self.assertEqual((caught.exception.status, caught.exception.code), (409, "conflict"))
        self.assertIsNotNone(caught.exception.proposal)
        self.assertEqual(caught.exception.proposal.status, "cancelled")  # type: ignore[union-attr]

    def test_the_same_idempotency_key_returns_the_first_proposal(self) -> None:
        r = refund()
        key = unique("refund-key")
        first = self.client.propose(r["intent"], r["action"], context=r["context"], idempotency_key=key)
        again = self.client.propose(r["intent"], r["action"], context=r["context"], idempotency_key=key)
        self.assertEqual((again.id, first.created, again.created), (first.id, True, False))
        self.assertEqual(self.client.get(first.id).idempotency_key, key)
        # The key names one proposal: another one under it is refused, nothing stored.
        with self.assertRaisesRegex(countersign.ConflictError, "already used for a different proposal"):
            self.client.propose(r["intent"] + " (changed)", r["action"], context=r["context"], idempotency_key=key)
        self.client.cancel(first.id)

    def test_a_bad_proposal_is_a_validation_error_naming_the_field(self) -> None:
        with self.assertRaises(countersign.ValidationError) as caught:
            self.client.propose("Refund", {"tool": "payments", "operation": "refund"})  # type: ignore[typeddict-item]
        e = caught.exception
        self.assertEqual((e.status, e.code), (400, "invalid_request"))
        self.assertIn("action.target", [i.path for i in e.issues])
        with self.assertRaises(countersign.ValidationError) as caught:
            self.client.get("not-an-id")
        self.assertEqual([i.path for i in caught.exception.issues], ["id"])

    def test_an_unknown_proposal_is_not_found(self) -> None:
        with self.assertRaises(countersign.NotFoundError) as caught:
            self.client.get("p_" + "0" * 26)
        self.assertEqual(caught.exception.status, 404)

    def test_the_server_refuses_a_wrong_secret_and_a_changed_body(self) -> None:
        assert URL is not None
        wrong = countersign.Client(URL, AGENT, SECRET + "x")
        r = refund()
        with self.assertRaises(countersign.AuthenticationError) as caught:
            wrong.propose(r["intent"], r["action"])
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "unauthorized"))
        # The server's 401 `code`: enough to fix the client, never whether the agent exists.
        self.assertEqual(caught.exception.reason, "bad_signature")
        late = countersign.Client(URL, AGENT, SECRET, now=lambda: __import__("time").time() - 400)
        with self.assertRaises(countersign.AuthenticationError) as stale:
            late.get("p_" + "0" * 26)
        self.assertEqual(stale.exception.reason, "stale_timestamp")

        # By hand: headers signed for one body, another body sent.
        body = json.dumps({"intent": r["intent"], "action": r["action"]}).encode()
        headers = countersign.signed_headers(AGENT, SECRET, "POST", "/v1/proposals", body, __import__("time").time())
        forged = body.replace(b"120.0", b"99999")
        with self.assertRaises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(urllib.request.Request(URL + "/v1/proposals", data=forged, headers=headers, method="POST"), timeout=10)
        self.assertEqual(http.exception.code, 401)
        # The same headers with the body they were made for: accepted.
        with urllib.request.urlopen(urllib.request.Request(URL + "/v1/proposals", data=body, headers=headers, method="POST"), timeout=10) as ok:
            self.assertEqual(ok.status, 201)
            self.client.cancel(json.loads(ok.read())["id"])

    def test_wait_times_out_pending_then_hands_over_the_token_once_approved_and_the_outcome_lands(self) -> None:
        r = refund()
        submitted = self.client.propose(r["intent"], r["action"], context=r["context"])
        still = self.client.wait(submitted.id, timeout=1)
        self.assertEqual(still.status, "pending")
        self.assertIsNone(still.execution_token)

        approver = threading.Thread(target=lambda: Console().decide(submitted.id, "approve"))
        approver.start()
        approved = self.client.wait(submitted.id, timeout=30)
        approver.join()
        self.assertEqual(approved.status, "approved")
        self.assertIsNotNone(approved.execution_token)
        self.assertEqual([(a.person, a.vote) for a in approved.approvals], [("alice", "approve")])
        self.assertNotIn(approved.execution_token or "-", repr(approved), "the token stays out of reprs and logs")
        # Handed over once: the next read has none.
        self.assertIsNone(self.client.get(submitted.id).execution_token)

        done = self.client.report_outcome(submitted.id, approved.execution_token or "", "succeeded", status_code=200, detail=f"refund re_{r['action']['parameters']['invoice']} created")
        self.assertEqual(done.status, "succeeded")
        self.assertEqual((done.execution or {}).get("outcome"), "succeeded")
        self.assertEqual(self.client.wait(submitted.id, until="final", timeout=5).status, "succeeded")

    def test_over_a_limit_is_rate_limited_with_retry_after(self) -> None:
        first = self.client.propose("Throttled 1", {"tool": "ops", "operation": "throttled", "target": unique("t")})
        try:
            with self.assertRaises(countersign.RateLimitedError) as caught:
                self.client.propose("Throttled 2", {"tool": "ops", "operation": "throttled", "target": unique("t")})
            e = caught.exception
            self.assertEqual((e.status, e.code), (429, "rate_limited"))
            self.assertIsNotNone(e.retry_after)
            self.assertGreaterEqual(e.retry_after or 0, 1)
            self.assertIsInstance(e.limit, str)
        finally:
            self.client.cancel(first.id)


class _Canned(BaseHTTPRequestHandler):
    answer: Dict[str, Any] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, headers, body = self.answer["status"], self.answer["headers"], json.dumps(self.answer["body"]).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class ErrorMapping(unittest.TestCase):
    """503 cannot be caused on the real server from here: a local server answers as it would."""

    def test_503_is_unavailable_with_retry_after_and_no_server_is_connection_failed(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            _Canned.answer = {"status": 503, "headers": {"retry-after": "2"}, "body": {"error": "unavailable", "message": "the store is unavailable"}}
            with self.assertRaises(countersign.UnavailableError) as caught:
                countersign.Client(url, "a", "s").get("p_" + "0" * 26)
            self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.retry_after), (503, "unavailable", 2.0))
            _Canned.answer = {"status": 403, "headers": {}, "body": {"error": "agent_revoked", "message": "agent a was revoked"}}
            with self.assertRaises(countersign.AgentRevokedError) as revoked:
                countersign.Client(url, "a", "s").get("p_" + "0" * 26)
            self.assertIsInstance(revoked.exception, countersign.ForbiddenError)
            # A 200 that is not countersign's JSON (a proxy's page) is never read as a proposal.
            _Canned.answer = {"status": 200, "headers": {}, "body": "<html>sign in to the proxy</html>"}
            with self.assertRaises(countersign.ApiError) as bad:
                countersign.Client(url, "a", "s").get("p_" + "0" * 26)
            self.assertEqual((bad.exception.status, bad.exception.code), (200, "bad_response"))
        finally:
            server.shutdown()
            server.server_close()
        with self.assertRaises(countersign.ConnectionFailed):
            countersign.Client(url, "a", "s", timeout=5).get("p_" + "0" * 26)


@with_vectors
class Callbacks(unittest.TestCase):
    """Callbacks the real server sent to a callback_url with a query (recorded by the vitest side)."""

    def setUp(self) -> None:
        v = vectors()["callbacks"]
        self.v = v
        self.client = countersign.Client("http://127.0.0.1:1", v["agent"], v["secret"], callback_url=v["callback_url"])

    def test_the_servers_callbacks_verify(self) -> None:
        statuses = []
        for r in self.v["received"]:
            payload = self.client.verify_callback(r["headers"], r["raw"].encode("utf-8"))
            self.assertEqual(payload.agent, self.v["agent"])
            self.assertEqual(self.client.verify_callback(r["headers"], r["raw"], r["path"]), payload)
            statuses.append(payload.status)
            if payload.status == "approved":
                self.assertIsNotNone(payload.execution_token)
        self.assertEqual(sorted(statuses), ["approved", "cancelled"])

    def test_a_changed_body_path_agent_or_secret_is_refused(self) -> None:
        r = self.v["received"][0]
        cases = {
            "bad_signature": lambda: self.client.verify_callback(r["headers"], r["raw"].replace('"', "'", 1)),
            "bad_signature ": lambda: self.client.verify_callback(r["headers"], r["raw"], "/hooks/countersign"),
            "another agent": lambda: self.client.verify_callback({**r["headers"], "x-countersign-agent": "py-agent"}, r["raw"]),
            "missing_headers": lambda: self.client.verify_callback({k: v for k, v in r["headers"].items() if k != "x-countersign-signature"}, r["raw"]),
            "wrong secret": lambda: countersign.Client("http://127.0.0.1:1", self.v["agent"], "other", callback_url=self.v["callback_url"]).verify_callback(r["headers"], r["raw"]),
        }
        for name, call in cases.items():
            with self.subTest(name), self.assertRaises(countersign.CallbackVerificationError):
                call()

    def test_a_callback_replayed_after_300_seconds_is_stale(self) -> None:
        r = self.v["received"][0]
        late = countersign.Client("http://127.0.0.1:1", self.v["agent"], self.v["secret"], callback_url=self.v["callback_url"], now=lambda: int(r["headers"]["x-countersign-timestamp"]) + 301)
        with self.assertRaises(countersign.CallbackVerificationError) as caught:
            late.verify_callback(r["headers"], r["raw"])
        self.assertEqual(caught.exception.reason, "stale_timestamp")


if __name__ == "__main__":
    unittest.main()
