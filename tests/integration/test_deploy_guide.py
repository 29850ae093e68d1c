"""docs/deploy.md as written: the deployment it describes, brought up from the blocks
of the page itself (PostgreSQL's role and database, the `weed server` command and its
`s3.json`, the TOML configuration, the certificate command, both nginx files), with
only ports and paths changed, then pushes and pulls through it with skopeo, and what
the guide says of a node that dies. A change to the guide that breaks the deployment,
or to the code that breaks the guide, fails here.

Two nodes, a `dockyard worker`, nginx in HTTPS (the push) and plain HTTP (the pull),
on the suite's PostgreSQL and a SeaweedFS of its own started with the guide's flags.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import images
import psycopg
import pytest
from conftest import SKOPEO_TIMEOUT, RegistryServer, dockyard_command, free_port, run_cli
from nginx import Nginx
from seaweedfs import SeaweedFS

pytestmark = pytest.mark.timeout(120)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
MiB = 1024 * 1024


def blocks(text: str, language: str) -> list[str]:
    """The page's fenced code blocks in `language`, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def substituted(text: str, changes: dict[str, str]) -> str:
    """`text` with each key replaced by its value; a key the guide no longer says fails
    the test (the substitution would silently do nothing)."""
    for old, new in changes.items():
        assert old in text, f"the guide no longer says {old!r}"
        text = text.replace(old, new)
    return text


def command(shell: str, program: str) -> list[str]:
    """The words of the guide's one command line that starts with `program`."""
    [line] = [line for line in shell.splitlines() if line.startswith(f"{program} ")]
    return shlex.split(line.removesuffix("&"))


class Guide:
    """What docs/deploy.md says, block by block."""

    def __init__(self) -> None:
        text = GUIDE.read_text()
        shell = "\n".join(blocks(text, "sh"))
        self.configuration = blocks(text, "toml")[0]
        self.plain_nginx, self.tls_nginx = blocks(text, "nginx")
        self.sql = re.search(r'psql -c "(.*)"', shell).group(1)  # type: ignore[union-attr]
        createdb = re.search(r"createdb -O (\S+) (\S+)", shell)
        assert createdb is not None
        self.database_owner, self.database = createdb.groups()
        self.s3_config = re.search(  # type: ignore[union-attr]
            r"cat > /etc/seaweedfs/s3.json <<'EOF'\n(.*?)\nEOF", shell, re.DOTALL
        ).group(1)
        self.weed = command(shell, "weed")
        self.bucket = re.search(r"s3.bucket.create -name (\w+)", shell).group(1)  # type: ignore[union-attr]
        self.secret = re.search(  # type: ignore[union-attr]
            r"export DOCKYARD_STORAGE__SECRET_KEY=(\S+?)`", text
        ).group(1)
        self.openssl = command(shell, "openssl")

    def weed_flags(self) -> tuple[str, ...]:
        """The `weed server` flags but its directory, S3 port and S3 configuration, which
        the test's SeaweedFS gives (a temporary directory, a free port)."""
        assert self.weed[:2] == ["weed", "server"], self.weed
        own = ("-dir=", "-s3.port=", "-s3.config=")
        flags = tuple(flag for flag in self.weed[2:] if not flag.startswith(own))
        assert len(flags) == len(self.weed) - 2 - len(own), self.weed
        return flags


def start_worker(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dockyard worker --config` as the guide starts it."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*dockyard_command(), "worker", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_for_line(log: Path, text: str, process: subprocess.Popen) -> None:
    """Until `process` has written `text` to `log`."""
    deadline = time.monotonic() + 30
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.05)


@dataclass
class Deployment:
    """The guide's deployment, started: its nodes, worker, nginx in HTTPS (`https`, the
    login server) and in plain HTTP (`http`), and the admin password of its first start."""

    nodes: tuple[RegistryServer, RegistryServer]
    worker: subprocess.Popen
    worker_log: Path
    https: Nginx
    http: Nginx
    password: str


@pytest.fixture(scope="module")
def weed() -> Iterator[SeaweedFS]:
    """A SeaweedFS of the module's own, run with the guide's flags and `s3.json`."""
    guide = Guide()
    store = SeaweedFS(flags=guide.weed_flags(), s3_config=guide.s3_config).start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def deployment(  # type: ignore[no-untyped-def]
    postgres, weed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The guide's steps, in its order, on this test's ports and paths."""
    guide, base = Guide(), tmp_path_factory.mktemp("deploy")
    # 1. PostgreSQL: the guide's role and database.
    with psycopg.connect(postgres._dsn(), autocommit=True) as conn:
        conn.execute(guide.sql)  # type: ignore[arg-type]
        # `createdb -O`; copying template0's files is the quicker way without fsync.
        conn.execute(
            f"CREATE DATABASE {guide.database} OWNER {guide.database_owner} "
            "TEMPLATE template0 STRATEGY FILE_COPY"
        )
    # 2. SeaweedFS: the guide's bucket.
    weed.client().create_bucket(Bucket=guide.bucket)

    # 3. The configuration, its addresses and paths this test's.
    ports = (free_port(), free_port())
    https, http = Nginx(), Nginx()
    etc = base / "etc"
    etc.mkdir()
    config = etc / "prod.toml"
    config.write_text(
        substituted(
            guide.configuration,
            {
                "/var/lib/dockyard": str(base / "node1"),
                "127.0.0.1:5001": f"127.0.0.1:{ports[0]}",
                '"registry.example"': f'"{https.host}"',
                "127.0.0.1:5432": f"127.0.0.1:{postgres.port}",
                "http://127.0.0.1:8333": weed.endpoint,
                "/etc/dockyard/secret.key": str(etc / "secret.key"),
            },
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_STORAGE__SECRET_KEY"] = guide.secret

    # `db upgrade` wherever it runs: the configured data directory, no ./data there.
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)
        upgraded = run_cli("db", "upgrade", "--config", str(config))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert (base / "node1").is_dir()
    assert not (elsewhere / "data").exists()

    # 4. The nodes (the second with its own address and data directory) and the worker.
    args = ("--config", str(config))
    node1 = RegistryServer(base / "node1", base / "node1.log", ports[0], args, env)
    node2 = RegistryServer(base / "node2", base / "node2.log", ports[1], args, env)
    worker_log = base / "worker.log"
    worker = None
    try:
        node1.start()
        assert (etc / "secret.key").exists()
        password = (base / "node1" / "admin-password").read_text().strip()
        worker = start_worker(config, env, worker_log)
        node2.start()
        wait_for_line(worker_log, '"worker started"', worker)

        # 5. nginx, in HTTPS with the guide's certificate command, and in plain HTTP.
        key, certificate = base / "registry.key", base / "registry.crt"
        made = subprocess.run(
            [
                word.replace("/etc/ssl/private/registry.example.key", str(key)).replace(
                    "/etc/ssl/registry.example.crt", str(certificate)
                )
                for word in guide.openssl
            ],
            capture_output=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        nodes = {
            "127.0.0.1:5001": node1.host,
            "127.0.0.1:5002": node2.host,
            "127.0.0.1:8333": weed.endpoint.removeprefix("http://"),
        }
        https.start(
            [node1.host, node2.host],
            site=substituted(
                guide.tls_nginx,
                {
                    **nodes,
                    "listen 443 ssl;": f"listen {https.host} ssl;",
                    "/etc/ssl/registry.example.crt": str(certificate),
                    "/etc/ssl/private/registry.example.key": str(key),
                },
            ),
        )
        http.start(
            [node1.host, node2.host],
            site=substituted(guide.plain_nginx, {**nodes, "listen 80;": f"listen {http.host};"}),
        )
        yield Deployment((node1, node2), worker, worker_log, https, http, password)
    finally:
        https.stop()
        http.stop()
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        node2.stop()
        node1.stop()
    assert worker.returncode == 0, worker_log.read_text()
    for node in (node1, node2):
        assert not (node.data_dir / "dockyard.db").exists(), "a node used SQLite"
        assert not (node.data_dir / "blobs").exists(), "a node stored blobs on disk"


def test_the_worker_says_what_it_runs(deployment: Deployment):
    assert deployment.worker.poll() is None
    log = deployment.worker_log.read_text()
    assert '"outbox: audit' in log and '"garbage collection"' in log, log


def test_the_token_realm_follows_the_scheme_nginx_forwards(deployment: Deployment):
    """`X-Forwarded-Proto`: behind nginx in HTTPS the nodes send clients to an https
    token realm, though they speak plain HTTP to nginx."""
    for scheme, balancer in (("https", deployment.https), ("http", deployment.http)):
        answer = httpx.get(f"{scheme}://{balancer.host}/v2/", verify=False, timeout=10)
        assert answer.status_code == 401, answer.text
        challenge = answer.headers["WWW-Authenticate"]
        assert f'realm="{scheme}://{balancer.host}/oauth2/token"' in challenge, challenge


def test_skopeo_pushes_over_https_and_pulls_over_plain_http(
    deployment: Deployment, skopeo, tmp_path: Path
):
    """The guide's `skopeo login` and `skopeo copy`, through nginx in HTTPS; then a pull
    through the plain-HTTP nginx."""
    https, http, password = deployment.https.host, deployment.http.host, deployment.password
    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "busybox", {"1": image})
    skopeo("login", "--tls-verify=false", "-u", "dockyard", "-p", password, https)
    skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
           f"oci:{layout}:1", f"docker://{https}/tools/busybox:1")  # fmt: skip
    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", f"--src-creds=dockyard:{password}",
           f"docker://{http}/tools/busybox:1", f"dir:{back}")  # fmt: skip
    manifest, blobs = images.read_dir_layout(back)
    assert manifest == image.manifest
    assert blobs == image.blobs
    # The guide's nginx_offload: the nodes pointed nginx at the bucket for the layers.
    layer = next(iter(image.blobs))
    node = deployment.nodes[0]
    pointed = httpx.get(f"{node.url}/v2/tools/busybox/blobs/{layer}", auth=("dockyard", password))
    assert pointed.headers["X-Accel-Redirect"].startswith(f"/_blob/{layer}/")


def layered_image(layers: int, size: int) -> images.Image:
    """An OCI image of `layers` gzipped random layers of `size` bytes each: big enough
    that a push is still running when a node is killed."""
    raw = [os.urandom(size) for _ in range(layers)]
    blobs = tuple(gzip.compress(layer, compresslevel=1) for layer in raw)
    config = images.image_config("amd64", None, [images.sha256_digest(r) for r in raw])
    manifest = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "config": images.descriptor(images.OCI_CONFIG, config),
            "layers": [images.descriptor(images.OCI_LAYER_GZIP, blob) for blob in blobs],
        },
        indent=2,
    )
    return images.Image(manifest, images.OCI_MANIFEST, config, blobs, {"os": "linux"})


def answered(node: RegistryServer, method: str, status: int, part: str) -> bool:
    """Whether `node` has answered a `method` on a path containing `part` with `status`."""
    return any(
        e.get("method") == method and e.get("status") == status and part in e.get("path", "")
        for e in node.request_log()
    )


def test_skopeo_push_through_a_node_killed_mid_copy(
    deployment: Deployment, skopeo, skopeo_bin: str, tmp_path: Path
):
    """What the guide says of a node that dies (last in this module: it kills node 1).
    skopeo copies an image through nginx, one layer after the other; node 1 is
    SIGKILLed as soon as node 2 has begun an upload (POST), so that the upload's PATCH,
    nginx's next request, is usually streaming to node 1. nginx sends node 2 what it
    may resend (every request node 1 refuses after the kill; a GET or HEAD it dropped);
    the PATCH in flight cannot be resent, and the client gets 502 Bad Gateway, which
    skopeo 1.9's `--retry-times` does not retry: the copy fails, and the same copy again
    finds the stored layers and finishes through node 2. When the kill comes before the
    PATCH reached node 1, nginx hands it to node 2 and the first copy finishes
    (test_two_nodes.py kills a node mid-PATCH every time, with raw HTTP)."""
    first, second = deployment.nodes
    https, password = deployment.https.host, deployment.password
    image = layered_image(layers=6, size=8 * MiB)
    layout = images.write_oci_layout(tmp_path / "layout", {"v1": image})
    dest = f"docker://{https}/nodes/skopeo-killed:v1"
    push = ("copy", "--retry-times=3", "--dest-tls-verify=false", "--preserve-digests",
            f"--dest-creds=dockyard:{password}", f"oci:{layout}:v1", dest)  # fmt: skip
    work = tmp_path / "first-try"
    work.mkdir()
    output = tmp_path / "first-try.log"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "TMPDIR": str(work)}
    with output.open("wb") as out:
        copy = subprocess.Popen(
            [skopeo_bin, "--insecure-policy", "--tmpdir", str(work), *push],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + SKOPEO_TIMEOUT
        while not answered(second, "POST", 202, "/blobs/uploads/"):
            assert copy.poll() is None, "the copy ended before node 2 began an upload"
            assert time.monotonic() < deadline, "node 2 never began an upload"
            time.sleep(0.01)
        first.kill()
        assert copy.poll() is None, "the copy ended before node 1 was killed"
        copy.wait(SKOPEO_TIMEOUT)
    finally:
        if copy.poll() is None:
            copy.kill()
            copy.wait()
    if copy.returncode != 0:
        said = output.read_text(errors="replace")
        assert "502 Bad Gateway" in said, said + second.stderr_tail()
        skopeo(*push)
    # Node 2 finished the push: the manifest went through it, after the kill.
    assert answered(second, "PUT", 201, "/nodes/skopeo-killed/manifests/v1")

    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", f"--src-creds=dockyard:{password}",
           "--preserve-digests", dest, f"dir:{back}")  # fmt: skip
    manifest, blobs = images.read_dir_layout(back)
    assert manifest == image.manifest
    assert blobs == image.blobs
