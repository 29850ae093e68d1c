"""`Trust` on the kernel's services with a clock the test moves: a kept verdict is
worked out again once the signing certificate it relied on expires (strict then
refuses), and a policy change made by another process reaches this one within
`KEEP_SECONDS`."""

from __future__ import annotations

from datetime import timedelta

import envelopes
import pytest
from core_registry import Registry
from images import OCI_MANIFEST
from prometheus_client import CollectorRegistry

from dockyard.metadata.records import ManifestRecord
from dockyard.signing.errors import Untrusted
from dockyard.signing.metrics import TrustDecisions
from dockyard.signing.signatures import Signatures
from dockyard.signing.trust import KEEP_SECONDS, Trust

POLICY = {
    "version": "1.0",
    "trustPolicies": [
        {
            "name": "strict",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["*"],
        }
    ],
}


def signed_image(reg: Registry, signer) -> ManifestRecord:
    digest = reg.image("app", "v1", b'{"os":"linux"}', b"layer")
    record = reg.meta.manifest_by_digest(reg.record.id, "app", digest)
    assert record is not None
    envelope = envelopes.notation_jws(signer, record.media_type, digest, record.size)
    reg.blob(b"{}")
    reg.blob(envelope)
    subject = {"mediaType": record.media_type, "digest": digest, "size": record.size}
    manifest = envelopes.notation_manifest(envelope, subject, signer.chain)
    reg.manifests.put(reg.record, "app", envelopes.digest_of(manifest), manifest, OCI_MANIFEST)
    return record


def test_a_kept_verdict_ends_when_the_certificate_does(meta, stores, clock, registry):
    reg = Registry(meta, stores, clock, registry)
    ca = envelopes.make_ca(days=3650)
    signer = envelopes.make_signer(ca, not_after=clock() + timedelta(days=30))
    record = signed_image(reg, signer)
    trust = Trust(meta, Signatures(meta, stores), clock)
    trust.add_store(registry, "ca", "acme", envelopes.pem_of(ca[1]))
    trust.set_policy(registry, POLICY, True)

    trust.check_pull(registry, "app", "v1", record)
    clock.advance(timedelta(days=31))
    with pytest.raises(Untrusted, match=r"expired \(CN=Builder"):
        trust.check_pull(registry, "app", "v1", record)


def test_another_process_s_policy_change_arrives_within_the_keeping_time(
    meta, stores, clock, registry
):
    reg = Registry(meta, stores, clock, registry)
    digest = reg.image("app", "v1", b'{"os":"linux"}', b"layer")
    record = meta.manifest_by_digest(registry.id, "app", digest)
    assert record is not None
    seconds = [0.0]
    here = Trust(meta, Signatures(meta, stores), clock, monotonic=lambda: seconds[0])
    there = Trust(meta, Signatures(meta, stores), clock)
    here.check_pull(registry, "app", "v1", record)  # no policy: kept as such
    there.add_store(registry, "ca", "acme", envelopes.pem_of(envelopes.make_ca()[1]))
    there.set_policy(registry, POLICY, True)
    here.check_pull(registry, "app", "v1", record)  # still the kept configuration
    seconds[0] += KEEP_SECONDS
    with pytest.raises(Untrusted, match="the image has no signature"):
        here.check_pull(registry, "app", "v1", record)


def test_refusals_are_counted_for_metrics(meta, stores, clock, registry):
    reg = Registry(meta, stores, clock, registry)
    digest = reg.image("app", "v1", b'{"os":"linux"}', b"layer")
    record = meta.manifest_by_digest(registry.id, "app", digest)
    assert record is not None
    trust = Trust(meta, Signatures(meta, stores), clock)
    trust.add_store(registry, "ca", "acme", envelopes.pem_of(envelopes.make_ca()[1]))
    trust.set_policy(registry, POLICY, True)
    counters = CollectorRegistry()
    decisions = TrustDecisions(trust, counters)
    for _ in range(2):
        with pytest.raises(Untrusted):
            trust.check_pull(registry, "app", "v1", record)
    decisions.flush()
    decisions.flush()  # counted once
    labels = {"registry": "contoso", "policy": "strict", "level": "strict", "decision": "refused"}
    assert counters.get_sample_value("dockyard_trust_policy_pulls_total", labels) == 2


class CountingSignatures(Signatures):
    """The real finder, counting how often envelopes are read."""

    reads = 0

    def find(self, *args, **kwargs):
        self.reads += 1
        return super().find(*args, **kwargs)


def test_an_unrelated_push_does_not_read_the_envelopes_again(meta, stores, clock, registry):
    reg = Registry(meta, stores, clock, registry)
    ca = envelopes.make_ca()
    record = signed_image(reg, envelopes.make_signer(ca))
    signatures = CountingSignatures(meta, stores)
    trust = Trust(meta, signatures, clock)
    trust.add_store(registry, "ca", "acme", envelopes.pem_of(ca[1]))
    trust.set_policy(registry, POLICY, True)
    trust.check_pull(registry, "app", "v1", record)
    assert signatures.reads == 1
    reg.image("other", "v1", b'{"os":"windows"}', b"other layer")  # empties the read cache
    trust.check_pull(registry, "app", "v1", record)
    assert signatures.reads == 1
    signed_image(reg, envelopes.make_signer(ca, cn="Second"))  # a new signature of v1
    trust.check_pull(registry, "app", "v1", record)
    assert signatures.reads == 2
