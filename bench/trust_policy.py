#!/usr/bin/env python3
"""Manifest GETs by tag with a trust policy enforced and without, in process (issue 15's
bench: with a policy on, at least 0.9x of off).

For each mode, a data directory of its own with the embedded database and the app built
as `dockyard serve` builds it (logins off, the background off); one image pushed through
the app with a cosign signature (the tag scheme) a trusted key verifies; with the policy
on, a `strict` statement over `*` with that key's store, enforced. Then GETs of the
image's manifest by tag called straight on the ASGI app, one after another, as one
worker thread serves them (`read_cache.call`). Modes alternate over the repetitions.
Reports GETs per second and CPU per GET, the medians and their ratio; exits 1 below
`--floor`. Run with the project's venv:

    .venv/bin/python bench/trust_policy.py [--requests 5000] [--repeat 3] [--floor 0.9]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_cache import MANIFEST_TYPE, call

from dockyard.app import create_app
from dockyard.core.digests import digest_bytes
from dockyard.logs import configure_logging
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings

POLICY = {
    "version": "1.0",
    "trustPolicies": [
        {
            "name": "bench",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["cosign:bench"],
        }
    ],
}


async def upload(app: Any, data: bytes) -> None:
    status = await call(
        app, "POST", f"/v2/app/blobs/uploads/?digest={digest_bytes(data, 'sha256')}", data
    )
    assert status == 201, status


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": digest_bytes(data, "sha256"),
        "size": len(data),
        **extra,
    }


async def push_signed(app: Any, key: ec.EllipticCurvePrivateKey) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    await upload(app, config)
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [],
        }
    )
    status = await call(app, "PUT", "/v2/app/manifests/v1", manifest, content_type=MANIFEST_TYPE)
    assert status == 201, status
    digest = digest_bytes(manifest, "sha256")
    payload = orjson.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "localhost:5000/app"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    await upload(app, payload)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = descriptor(
        "application/vnd.dev.cosign.simplesigning.v1+json",
        payload,
        annotations={"dev.cosignproject.cosign/signature": signature},
    )
    signature_manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [layer],
        }
    )
    tag = digest.replace(":", "-") + ".sig"
    status = await call(
        app, "PUT", f"/v2/app/manifests/{tag}", signature_manifest, content_type=MANIFEST_TYPE
    )
    assert status == 201, status


def enforce(services: Services, key: ec.EllipticCurvePrivateKey) -> None:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = services.registries.for_host("")
    services.trust.add_store(record, "cosign", "bench", public)
    services.trust.set_policy(record, POLICY, True)


def measure(policy: bool, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dockyard-trust-bench-") as data_dir:
        settings = load_settings(
            None,
            data_dir=Path(data_dir),
            auth={"enabled": False},
            server={"log_level": "warning"},
        )
        configure_logging(settings.server.log_level)
        prepare(settings)
        services = build_services(settings)
        try:
            app = create_app(services, background=False)
            key = ec.generate_private_key(ec.SECP256R1())

            async def run() -> tuple[float, float]:
                await push_signed(app, key)
                if policy:
                    enforce(services, key)
                for _ in range(200):  # warm up: caches filled, the verdict kept
                    status = await call(app, "GET", "/v2/app/manifests/v1", accept=MANIFEST_TYPE)
                    assert status == 200, status
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(requests):
                    await call(app, "GET", "/v2/app/manifests/v1", accept=MANIFEST_TYPE)
                return time.perf_counter() - wall, time.process_time() - cpu

            wall, cpu = asyncio.run(run())
        finally:
            services.close()
    return {"gets_per_second": requests / wall, "cpu_us_per_get": cpu / requests * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--floor", type=float, default=0.9)
    args = parser.parse_args()
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.repeat):
        for policy in (False, True):
            result = measure(policy, args.requests)
            results[policy].append(result)
            label = "policy on" if policy else "policy off"
            print(f"{label:>10}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()))
    medians = {
        policy: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for policy, runs in results.items()
    }
    for policy, values in medians.items():
        label = "policy on" if policy else "policy off"
        print(f"median {label:>10}: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
    ratio = medians[True]["gets_per_second"] / medians[False]["gets_per_second"]
    print(f"on/off: {ratio:.3f}x (floor {args.floor}x)")
    if ratio < args.floor:
        sys.exit(1)


if __name__ == "__main__":
    main()
