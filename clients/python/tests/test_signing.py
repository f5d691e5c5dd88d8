"""Signing byte for byte as the TypeScript code: the expected values are computed by
src/core/signing.ts in the vitest file that runs these tests, never pasted here."""

from __future__ import annotations

import unittest

from support import countersign, vectors, with_vectors


@with_vectors
class SigningMatchesTypeScript(unittest.TestCase):
    def test_signatures_for_fixed_inputs(self) -> None:
        cases = vectors()["sign"]
        self.assertGreaterEqual(len(cases), 4)
        for c in cases:
            with self.subTest(path=c["path"], secret=c["secret"]):
                self.assertEqual(countersign.sign(c["secret"], c["timestamp"], c["method"], c["path"], c["body"]), c["signature"])
                # Bytes and text sign alike (a callback's body arrives as bytes).
                self.assertEqual(countersign.sign(c["secret"], c["timestamp"], c["method"], c["path"], c["body"].encode("utf-8")), c["signature"])

    def test_headers(self) -> None:
        h = vectors()["headers"]
        ours = countersign.signed_headers(h["agent"], h["secret"], h["method"], h["path"], h["body"], h["nowMs"] / 1000)
        self.assertEqual(ours, h["headers"])

    def test_verdicts(self) -> None:
        for c in vectors()["verify"]:
            with self.subTest(timestamp=c["timestamp"], now=c["nowMs"]):
                reason = countersign.check_signature("agent-secret", c["timestamp"], c["signature"], "POST", "/v1/proposals", "{}", c["nowMs"] / 1000)
                self.assertEqual(reason, c["reason"])
        self.assertIn("bad_timestamp", [c["reason"] for c in vectors()["verify"]], "the vectors cover a non-ASCII timestamp")

    def test_request_targets(self) -> None:
        for c in vectors()["targets"]:
            with self.subTest(url=c["url"]):
                self.assertEqual(countersign.request_target(c["url"]), c["target"])


class SigningAlone(unittest.TestCase):
    def test_a_signature_changes_with_each_part(self) -> None:
        base = countersign.sign("s", 1, "POST", "/v1/proposals/p_a/cancel", "{}")
        self.assertTrue(base.startswith("v2="))
        for other in (
            countersign.sign("s", 1, "POST", "/v1/proposals/p_b/cancel", "{}"),
            countersign.sign("s", 1, "GET", "/v1/proposals/p_a/cancel", "{}"),
            countersign.sign("s", 2, "POST", "/v1/proposals/p_a/cancel", "{}"),
            countersign.sign("s", 1, "POST", "/v1/proposals/p_a/cancel", "{ }"),
            countersign.sign("t", 1, "POST", "/v1/proposals/p_a/cancel", "{}"),
        ):
            self.assertNotEqual(other, base)


if __name__ == "__main__":
    unittest.main()
