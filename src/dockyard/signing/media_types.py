"""The media and artifact types by which Notation's and cosign's signatures are
recognised (the Notary Project's signature specification; cosign's `pkg/types`)."""

from __future__ import annotations

# Notation: the signature manifest's artifactType (or, in its legacy form, its config's
# media type), its one layer (the envelope) and what the envelope signs.
NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
JWS_ENVELOPE = "application/jose+json"
COSE_ENVELOPE = "application/cose"
NOTATION_PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"
THUMBPRINTS_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"

# cosign: the referrers mode's artifactType, the layers of both modes (one per signature)
# and the annotation holding each layer's base64 signature.
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
# cosign v3's default: a Sigstore bundle referrer; recognised (it makes an image
# "signed"), not verified here.
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# What cosign's tag scheme attaches beside `.sig`: `.att` attestations (DSSE envelopes of
# in-toto statements) and `.sbom` documents (`cosign attach sbom`'s SPDX, CycloneDX and
# Syft types). A manifest made only of such layers is not runnable and names no subject.
COSIGN_ATTACHMENTS = frozenset(
    {
        "application/vnd.dsse.envelope.v1+json",
        "application/vnd.in-toto+json",
        "text/spdx",
        "text/spdx+json",
        "text/spdx+xml",
        "application/spdx+json",
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.syft+json",
    }
)

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def cosign_tag(digest: str) -> str:
    """cosign's tag scheme for the signatures of `digest`: `sha256-<hex>.sig`."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.sig"
