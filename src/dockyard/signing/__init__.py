"""Signatures: Notation's and cosign's, found beside a manifest, verified against a
registry's trust stores, and a trust policy enforced at pull (issue 15)."""
