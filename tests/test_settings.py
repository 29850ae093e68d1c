"""Settings precedence (flags > environment > file > defaults) and the CLI's help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from dockyard.settings import every_setting, load_settings


def test_flags_beat_environment_beat_file(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text(
        'data_dir = "/from/file"\n'
        '[server]\nlisten = "0.0.0.0:6000"\nworkers = 3\nlog_level = "error"\n'
        '[registry]\ndefault_name = "fromfile"\n'
    )
    monkeypatch.setenv("DOCKYARD_SERVER__WORKERS", "5")
    monkeypatch.setenv("DOCKYARD_SERVER__LOG_LEVEL", "warning")
    settings = load_settings(config, server={"log_level": "debug"})
    assert settings.server.listen == "0.0.0.0:6000"  # file only
    assert settings.server.workers == 5  # environment over file
    assert settings.server.log_level == "debug"  # flag over environment
    assert settings.registry.default_name == "fromfile"
    assert settings.data_dir == Path("/from/file")


def test_defaults_put_everything_in_the_data_directory(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'dockyard.db'}"
    assert settings.blob_root == tmp_path / "blobs"
    assert settings.default_login_server == "localhost:5000"


def test_serve_help_documents_every_setting() -> None:
    """Flags name their setting as `(key;`; the reference at the end lists every setting
    with its environment variable, flag or not."""
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "400", "PATH": ""},
    )
    help_text = " ".join(result.stdout.split())
    assert "(server.listen;" in help_text  # a flag
    for key, _ in every_setting():
        variable = "DOCKYARD_" + key.upper().replace(".", "__")
        assert f"{key} ({variable}; default" in help_text, key


def test_nginx_offload_needs_s3_without_redirect_and_a_path() -> None:
    s3 = {"kind": "s3", "bucket": "b"}
    assert load_settings(None, storage={**s3, "nginx_offload": "/_blob/"}).storage.nginx_offload
    for storage in (
        {"nginx_offload": "/_blob/"},  # files: nothing for nginx to fetch
        {**s3, "nginx_offload": "/_blob/", "redirect": True},
        {**s3, "nginx_offload": "_blob"},
    ):
        with pytest.raises(ValidationError, match="nginx_offload"):
            load_settings(None, storage=storage)


def test_the_workers_get_the_secrets_in_clear() -> None:
    """The worker processes' settings travel as JSON, which masks `SecretStr`: a secret
    left masked would be `**********` in every worker (and every region alike)."""
    from dockyard.server import _settings_for_workers

    settings = load_settings(
        None,
        storage={"secret_key": "s3-secret"},
        metrics={"token": "metrics-token"},
        region={"peer_secret": "peer-secret"},
        encryption={"pkcs11_pin": "1234"},
    )
    data = orjson.loads(_settings_for_workers(settings))
    assert data["encryption"]["pkcs11_pin"] == "1234"
    assert data["storage"]["secret_key"] == "s3-secret"
    assert data["metrics"]["token"] == "metrics-token"
    assert data["region"]["peer_secret"] == "peer-secret"
