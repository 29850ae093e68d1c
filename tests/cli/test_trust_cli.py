"""`dockyard trust` on a server's database: stores added, listed and removed (not while
the policy names them), the policy set, shown, disabled, and a document that cannot be
used refused in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from dockyard.cli.local import console
from dockyard.cli.main import app
from dockyard.server import prepare
from dockyard.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent.parent / "signing"))
import envelopes


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    console.width = 200  # it took the width of the process that imported it
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_stores_and_policy_round_trip(tmp_path: Path) -> None:
    prepare(load_settings(None, data_dir=tmp_path))
    _, root = envelopes.make_ca()
    (tmp_path / "root.pem").write_bytes(envelopes.pem_of(root))
    (tmp_path / "cosign.pub").write_bytes(envelopes.cosign_key()[1])
    code, out = run(
        tmp_path,
        "trust",
        "store",
        "add",
        str(tmp_path / "root.pem"),
        "--type",
        "ca",
        "--name",
        "acme",
    )
    assert code == 0 and "ca:acme holds 1" in out, out
    code, out = run(
        tmp_path,
        "trust",
        "store",
        "add",
        str(tmp_path / "cosign.pub"),
        "--type",
        "cosign",
        "--name",
        "release",
    )
    assert code == 0, out
    code, out = run(tmp_path, "trust", "store", "list")
    assert "ca:acme" in out and "CN=Acme Root CA" in out and "cosign:release" in out, out

    document = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "all",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "permissive"},
                "trustStores": ["ca:acme"],
                "trustedIdentities": ["*"],
            }
        ],
    }
    (tmp_path / "policy.json").write_text(json.dumps(document))
    code, out = run(tmp_path, "trust", "policy", "set", str(tmp_path / "policy.json"), "--enable")
    assert code == 0 and "enforcement on" in out, out
    code, out = run(tmp_path, "trust", "policy", "show")
    assert json.loads(out) == {"enabled": True, "document": document}
    code, out = run(tmp_path, "trust", "store", "remove", "--type", "ca", "--name", "acme")
    assert code == 1 and "trust policy 'all' uses ca:acme" in out, out
    code, out = run(tmp_path, "trust", "store", "remove", "--type", "cosign", "--name", "release")
    assert code == 0, out
    code, out = run(tmp_path, "trust", "policy", "disable")
    assert code == 0 and "enforcement off" in out
    code, out = run(tmp_path, "trust", "check")
    assert code == 0 and "0 image(s) would be refused" in out, out

    document["trustPolicies"][0]["trustStores"] = ["ca:gone"]
    (tmp_path / "policy.json").write_text(json.dumps(document))
    code, out = run(tmp_path, "trust", "policy", "set", str(tmp_path / "policy.json"))
    assert code == 1 and "no such trust store: ca:gone" in out, out
