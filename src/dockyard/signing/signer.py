"""Making a Notation signature for `dockyard sign`: the JWS envelope over an image's
descriptor (`notation.make_jws`; or COSE, `cose.make_cose`) and the signature manifest
notation pushes beside it (artifactType `application/vnd.cncf.notary.signature`, the
empty config, the envelope as its one layer, the image as `subject`, the chain's
thumbprints annotated)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from cryptography.hazmat.primitives import hashes, serialization

from dockyard.core.digests import digest_bytes
from dockyard.signing import cose, notation
from dockyard.signing.algorithms import PrivateKey, algorithm_for
from dockyard.signing.certificates import check_chain, load_certificates
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.media_types import (
    COSE_ENVELOPE,
    EMPTY_JSON_DIGEST,
    JWS_ENVELOPE,
    NOTATION_SIGNATURE,
    OCI_EMPTY,
    THUMBPRINTS_ANNOTATION,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class SignatureRequest:
    media_type: str
    digest: str
    size: int
    signing_time: datetime
    expiry: datetime | None = None


@dataclass(frozen=True)
class SignatureArtifact:
    """What to push: the blobs (the empty config, the envelope), then the manifest by
    its digest."""

    blobs: tuple[bytes, ...]
    manifest: bytes
    digest: str
    media_type: str = OCI_MANIFEST


@dataclass(frozen=True)
class Signer:
    key: PrivateKey
    chain: tuple  # x509 certificates, leaf first

    def sign(self, request: SignatureRequest, cose_envelope: bool = False) -> SignatureArtifact:
        """The JWS envelope (notation's default), or with `cose_envelope` the COSE one."""
        target = notation.Target(request.media_type, request.digest, request.size)
        make = cose.make_cose if cose_envelope else notation.make_jws
        envelope = make(target, self.key, self.chain, request.signing_time, request.expiry)
        thumbprints = orjson.dumps([c.fingerprint(hashes.SHA256()).hex() for c in self.chain])
        manifest = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": NOTATION_SIGNATURE,
                "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
                "layers": [
                    {
                        "mediaType": COSE_ENVELOPE if cose_envelope else JWS_ENVELOPE,
                        "digest": digest_bytes(envelope, "sha256"),
                        "size": len(envelope),
                    }
                ],
                "subject": {
                    "mediaType": request.media_type,
                    "digest": request.digest,
                    "size": request.size,
                },
                "annotations": {
                    THUMBPRINTS_ANNOTATION: thumbprints.decode(),
                    "org.opencontainers.image.created": request.signing_time.astimezone(
                        UTC
                    ).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            }
        )
        return SignatureArtifact((b"{}", envelope), manifest, digest_bytes(manifest, "sha256"))


def load_signer(key_pem: bytes, chain_pem: bytes) -> Signer:
    """The user's key and certificate chain, checked as notation checks them before
    signing: the leaf holds the key's public half and may sign, the chain links up."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot read the signing key (PEM, unencrypted): {exc}") from None
    try:
        chain = load_certificates(chain_pem)
        algorithm_for(key)  # type: ignore[arg-type]
    except SignatureInvalid as exc:
        raise ValueError(str(exc)) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if chain[0].public_key().public_bytes(der, public) != key.public_key().public_bytes(
        der, public
    ):
        raise ValueError("the certificate's public key is not the signing key's")
    checked = check_chain(chain, chain[-1:], datetime.now(UTC))
    if not checked.trusted:
        raise ValueError(f"the certificate chain does not hold: {checked.problem}")
    return Signer(key, tuple(chain))  # type: ignore[arg-type]
