"""`dockyard migrate --to-config`: an embedded server (SQLite and files) filled with
images, tags, a lock, a referrer, a token and an identity is moved to a real PostgreSQL
and SeaweedFS. A run killed mid-copy and a run that meets a damaged blob leave nothing
half-made; the runs after them finish the move without duplicating anything, and a
server on the target configuration serves the same bytes to the same logins."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time

import httpx
import images
import pytest
from conftest import RegistryServer, dockyard_command, printed, run_cli
from seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

from dockyard.metadata.engine import make_engine
from dockyard.metadata.transfer import row_counts
from dockyard.storage.s3 import S3BlobStore

ADMIN = ("dockyard", "admin-secret-before-the-move")
OCI = images.OCI_MANIFEST


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The `dockyard` command (in this process), away from any DOCKYARD_* setting of the
    developer's shell."""
    return run_cli(*args, env=env)


def _push_blob(http: httpx.Client, repo: str, data: bytes) -> str:
    digest = images.sha256_digest(data)
    response = http.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data)
    assert response.status_code == 201, response.text
    return digest


def _push_manifest(http: httpx.Client, repo: str, reference: str, body: bytes, media_type: str):
    response = http.put(
        f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )
    assert response.status_code == 201, response.text


def _fill(server: RegistryServer) -> dict:
    """Images, tags, an index, a referrer, a 24 MiB layer, a tag lock; what to expect."""
    web, docker = images.busybox_image("amd64"), images.busybox_image("amd64", docker=True)
    index = images.busybox_index()
    big_layer = os.urandom(24 << 20)
    big_config = images.json_bytes({"architecture": "amd64", "os": "linux"})
    big = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": images.descriptor(images.OCI_CONFIG, big_config),
            "layers": [images.descriptor(images.OCI_LAYER_GZIP, big_layer)],
        }
    )
    signature = b"a signature over apps/web:v1"
    referrer = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "artifactType": "application/vnd.example.sig",
            "config": images.descriptor(images.OCI_EMPTY, images.EMPTY_JSON),
            "layers": [images.descriptor("application/octet-stream", signature)],
            "subject": images.descriptor(OCI, web.manifest),
        }
    )
    pushed: dict[str, dict[str, bytes]] = {}
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as http:

        def blobs(repo: str, *data: bytes) -> None:
            for blob in data:
                pushed.setdefault(repo, {})[_push_blob(http, repo, blob)] = blob

        blobs("apps/web", *web.blobs.values(), *docker.blobs.values())
        _push_manifest(http, "apps/web", "v1", web.manifest, web.media_type)
        _push_manifest(http, "apps/web", "v2", docker.manifest, docker.media_type)
        for child in index.children:
            blobs("apps/multi", *child.blobs.values())
            _push_manifest(http, "apps/multi", child.digest, child.manifest, child.media_type)
        _push_manifest(http, "apps/multi", "latest", index.manifest, index.media_type)
        blobs("apps/web", images.EMPTY_JSON, signature)
        _push_manifest(http, "apps/web", images.sha256_digest(referrer), referrer, OCI)
        blobs("big/data", big_config, big_layer)
        _push_manifest(http, "big/data", "1", big, OCI)
        locked = http.patch("/acr/v1/apps/web/_tags/v1", json={"writeEnabled": False})
        assert locked.status_code == 200, locked.text
    tags = {
        ("apps/web", "v1"): web.manifest,
        ("apps/web", "v2"): docker.manifest,
        ("apps/multi", "latest"): index.manifest,
        ("big/data", "1"): big,
    }
    return {"blobs": pushed, "tags": tags, "signature": signature, "referrer": referrer}


def _stored(client, bucket: str) -> dict[str, bytes]:
    """Every published blob in the bucket: key -> bytes (read through the store, which
    follows a blob key's link to its data)."""
    store = S3BlobStore(client, bucket, "dockyard")
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="dockyard/blobs/"
    ):
        for entry in page.get("Contents", ()):
            algorithm, _, encoded = entry["Key"].removeprefix("dockyard/blobs/").partition("/")
            with store.open(f"{algorithm}:{encoded.rsplit('/', 1)[1]}") as blob:
                found[entry["Key"]] = blob.read()
    return found


def _assert_every_stored_blob_whole(client, bucket: str) -> None:
    for key, data in _stored(client, bucket).items():
        assert key.rsplit("/", 1)[1] == hashlib.sha256(data).hexdigest(), key


def _kill_mid_copy(args: list[str], client, bucket: str) -> None:
    """Start a migration and SIGKILL it as soon as its first upload shows in the bucket."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    proc = subprocess.Popen(
        [*dockyard_command(), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            listed = client.list_objects_v2(Bucket=bucket, Prefix="dockyard/uploads/", MaxKeys=1)
            if listed.get("KeyCount", 0):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the migration ended before it could be interrupted"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


@pytest.mark.slow
def test_migrate_to_postgresql_and_s3_survives_interruptions(postgres, seaweedfs, tmp_path):
    source = RegistryServer(
        tmp_path / "source",
        tmp_path / "source.log",
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": ADMIN[1]},
    ).start()
    try:
        content = _fill(source)
        on = ("-r", "dockyard")
        source.manage(
            "scope-map", "create", "-n", "readers", *on, "--repository", "apps/* content/read"
        )
        token_password = printed(
            source.manage("token", "create", "-n", "ci", *on, "--scope-map", "readers"),
            "password1",
        )
        created = source.admin("identity", "create", "builder")
        client_id, client_secret = printed(created, "username"), printed(created, "secret")
        source.manage(
            "role", "assignment", "create", "--assignee", "builder", "--role", "AcrPull", *on
        )
    finally:
        source.stop()

    database = postgres.create_database("migrate")
    bucket = seaweedfs.create_bucket("migrate")
    prod = tmp_path / "prod.toml"
    prod.write_text(
        f'data_dir = "{tmp_path / "target"}"\n'
        f'[metadata]\nurl = "{database}"\n'
        f'[storage]\nkind = "s3"\nendpoint = "{seaweedfs.endpoint}"\nbucket = "{bucket}"\n'
        f'region = "{REGION}"\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
        "path_style = true\n"
    )
    blob_count = len({digest for blobs in content["blobs"].values() for digest in blobs})
    args = ["migrate", "--data-dir", str(source.data_dir), "--to-config", str(prod)]
    s3 = seaweedfs.client()
    target_db = make_engine(database)
    source_db = make_engine(f"sqlite:///{source.data_dir / 'dockyard.db'}")
    try:
        planned = _run(*args, "--dry-run")
        assert planned.returncode == 0, planned.stdout + planned.stderr
        assert f"would copy {blob_count} " in planned.stdout, planned.stdout
        assert not _stored(s3, bucket) and not (tmp_path / "target").exists()

        # 1. Killed while copying blobs: whatever reached the bucket is whole, and no
        # metadata row exists yet to point at what did not.
        _kill_mid_copy(args, s3, bucket)
        _assert_every_stored_blob_whole(s3, bucket)
        assert row_counts(target_db)["registries"] == 0

        # 2. A damaged blob in the source is reported, not copied; no metadata either.
        signature = content["signature"]
        damaged = images.sha256_digest(signature)
        path = source.data_dir / "blobs/dockyard/blobs/sha256" / damaged[7:9] / damaged[7:]
        path.write_bytes(b"X" * len(signature))
        refused = _run(*args)
        assert refused.returncode == 1
        assert f"damaged: blob {damaged} of registry dockyard" in refused.stdout
        assert "Traceback" not in refused.stdout + refused.stderr
        assert (
            s3.list_objects_v2(Bucket=bucket, Prefix=f"dockyard/blobs/sha256/{damaged[7:9]}/")[
                "KeyCount"
            ]
            == 0
        )
        _assert_every_stored_blob_whole(s3, bucket)
        assert row_counts(target_db)["registries"] == 0
        path.write_bytes(signature)

        # 3. The run after them finishes the move; 4. another one changes nothing.
        finished = _run(*args)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert "blobs: copied 1 " in finished.stdout, finished.stdout
        output = finished.stdout + finished.stderr
        assert SECRET_KEY not in output and ADMIN[1] not in output
        counts = row_counts(target_db)
        again = _run(*args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"copied 0 (0 bytes), {blob_count} already" in again.stdout, again.stdout
        assert row_counts(target_db) == counts == row_counts(source_db)
        assert counts["manifests"] == 7 and counts["tags"] == 4
    finally:
        target_db.dispose()
        source_db.dispose()
    assert (tmp_path / "target/secret.key").read_bytes() == (
        source.data_dir / "secret.key"
    ).read_bytes()
    assert len(_stored(s3, bucket)) == blob_count

    target = RegistryServer(
        tmp_path / "target", tmp_path / "target.log", args=("--config", str(prod))
    ).start()
    try:
        _check_target(target, content, token_password, client_id, client_secret)
    finally:
        target.stop()
    assert not (tmp_path / "target/blobs").exists()


def _check_target(
    target: RegistryServer, content: dict, token_password: str, client_id: str, secret: str
) -> None:
    with httpx.Client(base_url=target.url, auth=ADMIN, timeout=30) as http:
        # The same tags, the same manifest and blob bytes, the lock still on.
        for (repo, tag), body in content["tags"].items():
            pulled = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": "*/*"})
            assert pulled.status_code == 200 and pulled.content == body, (repo, tag)
        for repo, blobs in content["blobs"].items():
            for digest, data in blobs.items():
                pulled = http.get(f"/v2/{repo}/blobs/{digest}")
                assert pulled.status_code == 200 and pulled.content == data, (repo, digest)
        assert http.get("/v2/apps/web/tags/list").json()["tags"] == ["v1", "v2"]
        locked = http.get("/acr/v1/apps/web/_tags/v1").json()["tag"]["changeableAttributes"]
        assert locked["writeEnabled"] is False
        subject = images.sha256_digest(content["tags"]["apps/web", "v1"])
        referrers = http.get(f"/v2/apps/web/referrers/{subject}").json()["manifests"]
        assert [m["digest"] for m in referrers] == [images.sha256_digest(content["referrer"])]
        # New rows get ids past the copied ones.
        fresh = images.busybox_image("arm64")
        for blob in fresh.blobs.values():
            _push_blob(http, "apps/new", blob)
        _push_manifest(http, "apps/new", "1", fresh.manifest, fresh.media_type)

    # Logins made before the move still work: the token and the identity.
    token = httpx.get(
        f"{target.url}/oauth2/token",
        params={"service": target.host, "scope": "repository:apps/web:pull"},
        auth=("ci", token_password),
    )
    assert token.status_code == 200, token.text
    identity = httpx.post(
        f"{target.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://containerregistry.azure.net/.default",
        },
    )
    assert identity.status_code == 200, identity.text
    wrong = httpx.get(f"{target.url}/v2/apps/web/tags/list", auth=(ADMIN[0], "wrong"))
    assert wrong.status_code == 401


def test_migrate_refuses_in_one_line(postgres, tmp_path):
    """Nothing to move, or a target database that another installation uses."""
    data = tmp_path / "data"
    prod = tmp_path / "prod.toml"
    prod.write_text(f'data_dir = "{data}"\n')
    same = _run("migrate", "--data-dir", str(data), "--to-config", str(prod))
    assert same.returncode == 1
    assert "nothing to move" in same.stdout, same.stdout

    # Offline commands make the default registry; the target's has another name.
    assert _run("db", "upgrade", "--data-dir", str(data)).returncode == 0
    assert _run("refresh-token", "revoke", "--data-dir", str(data)).returncode == 0
    other = postgres.create_database("foreign")
    assert _run("db", "upgrade", "--database-url", other).returncode == 0
    made = _run(
        "refresh-token", "revoke", "--database-url", other,
        env={"DOCKYARD_REGISTRY__DEFAULT_NAME": "elsewhere"},
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    prod.write_text(f'data_dir = "{tmp_path / "target"}"\n[metadata]\nurl = "{other}"\n')
    foreign = _run("migrate", "--data-dir", str(data), "--to-config", str(prod))
    assert foreign.returncode == 1
    assert "already holds registry 'elsewhere'" in foreign.stdout, foreign.stdout
    assert "Traceback" not in same.stdout + same.stderr + foreign.stdout + foreign.stderr
