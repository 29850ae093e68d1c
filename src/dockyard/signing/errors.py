"""The signing feature's errors: a signature that cannot be read or does not verify
(kept inside the feature: it becomes a verdict's reason, never a client's error), a
trust policy or trust store that is not valid (400), and a pull a trust policy refuses
(DENIED)."""

from __future__ import annotations

from dockyard.common.errors import Denied, RequestInvalid


class SignatureInvalid(Exception):
    """A signature envelope or payload that is malformed or does not verify; the message
    says why, for the verdict and the log (never key material)."""


class TrustPolicyInvalid(RequestInvalid):
    """A trust policy document or trust store the registry cannot use."""

    default_message = "the trust policy is not valid"


class Untrusted(Denied):
    """A pull the registry's trust policy refuses: no signature verifies."""

    default_message = "the image is not signed by an identity the trust policy trusts"
