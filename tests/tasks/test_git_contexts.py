"""Git contexts: how ACR's context strings are read, which URLs name the same
repository, and fetches with dulwich from a real bare repository made with git: the
branch head, an older commit, a subfolder, links that leave the context dropped, and a
token that never shows in an error, over the local disk and git's smart HTTP."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import make_wsgi_chain
from git_repos import GitRepository

from dockyard.tasks.git_contexts import (
    GitContext,
    GitContextInvalid,
    GitFetchFailed,
    fetch,
    parse_git_context,
    same_repository,
)

TOKEN = "tok-secret-789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://github.com/a/b.git", GitContext("https://github.com/a/b.git", None, "")),
        (
            "https://github.com/a/b.git#main:docker/app",
            GitContext("https://github.com/a/b.git", "main", "docker/app"),
        ),
        ("https://github.com/a/b.git#:sub", GitContext("https://github.com/a/b.git", None, "sub")),
        ("/srv/app.git#dev", GitContext("/srv/app.git", "dev", "")),
        ("file:///srv/app", GitContext("file:///srv/app", None, "")),
        ("source/1/0123456789abcdef0123456789abcdef.tar.gz", None),
        ("https://example.com/app.tar.gz", None),
        ("oci://example.com/app:1", None),
        ("/dev/null", None),
        ("relative/app.git", None),
    ],
)
def test_contexts_are_read_as_acr_writes_them(text: str, expected: GitContext | None) -> None:
    assert parse_git_context(text) == expected


def test_a_commit_in_the_fragment_is_a_commit_and_a_subfolder_may_not_leave() -> None:
    sha = "a" * 40
    context = parse_git_context(f"https://github.com/a/b.git#{sha}:x")
    assert context is not None and context.commit == sha and context.branch is None
    with pytest.raises(GitContextInvalid):
        parse_git_context("https://github.com/a/b.git#main:../up")


def test_urls_of_one_repository_are_the_same() -> None:
    assert same_repository("https://GitHub.com/a/b.git", "https://github.com/a/b")
    assert same_repository("https://user:pat@github.com/a/b/", "https://github.com/a/b.git")
    assert same_repository("/srv/app.git", "file:///srv/app.git")
    assert not same_repository("https://github.com/a/b.git", "https://github.com/a/c.git")


@pytest.fixture
def repository(tmp_path: Path) -> GitRepository:
    return GitRepository(tmp_path / "repo")


def test_fetch_writes_the_branch_head_and_drops_links_out(
    repository: GitRepository, tmp_path: Path
) -> None:
    repository.commit({"Dockerfile": "FROM scratch\n", "sub/run.sh": "echo\n"})
    os.symlink("/etc/passwd", repository.work / "escape")
    os.symlink("Dockerfile", repository.work / "inside")
    (repository.work / "sub" / "run.sh").chmod(0o755)
    head = repository.commit({}, "links")
    repository.push()
    target = tmp_path / "context"
    fetched = fetch(GitContext(str(repository.bare), None, ""), None, None, target, tmp_path / "s")
    assert fetched == head
    assert (target / "Dockerfile").read_text() == "FROM scratch\n"
    assert os.access(target / "sub" / "run.sh", os.X_OK)
    assert (target / "inside").is_symlink() and not (target / "escape").exists()
    assert not (target / ".git").exists() and not (tmp_path / "s").exists()


def test_fetch_takes_the_commit_asked_for_and_the_subfolder(
    repository: GitRepository, tmp_path: Path
) -> None:
    first = repository.commit({"app/Dockerfile": "FROM one\n", "README": "x\n"})
    repository.commit({"app/Dockerfile": "FROM two\n"})
    repository.push()
    context = GitContext(f"file://{repository.bare}", "main", "app")
    target = tmp_path / "context"
    assert fetch(context, None, first, target, tmp_path / "s") == first
    assert (target / "Dockerfile").read_text() == "FROM one\n"
    assert not (target / "README").exists()


def test_a_failed_fetch_names_the_repository_without_the_token(tmp_path: Path) -> None:
    context = GitContext(str(tmp_path / "missing.git"), "main", "")
    with pytest.raises(GitFetchFailed) as failed:
        fetch(context, "tok-secret-123", None, tmp_path / "c", tmp_path / "s")
    assert "missing.git" in str(failed.value) and "tok-secret-123" not in str(failed.value)


def test_a_missing_branch_or_subfolder_fails(repository: GitRepository, tmp_path: Path) -> None:
    repository.commit({"Dockerfile": "FROM scratch\n"})
    repository.push()
    with pytest.raises(GitFetchFailed, match="no branch 'dev'"):
        fetch(
            GitContext(str(repository.bare), "dev", ""), None, None, tmp_path / "c", tmp_path / "s"
        )
    with pytest.raises(GitFetchFailed, match="no folder"):
        fetch(
            GitContext(str(repository.bare), None, "x"), None, None, tmp_path / "d", tmp_path / "t"
        )


@pytest.fixture
def http_repository(repository: GitRepository) -> Iterator[tuple[GitRepository, str]]:
    """The repository served over git's smart HTTP (dulwich's WSGI server) on a loopback
    port, to a client whose password is `TOKEN` only, as a git host checks a token."""
    repo = Repo(str(repository.bare))
    git_app = make_wsgi_chain(DictBackend({"/app.git": repo}))

    def app(environ: dict, start_response: Any) -> Iterable[bytes]:
        expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"who are you?"]
        return git_app(environ, start_response)

    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield repository, f"http://127.0.0.1:{server.server_port}/app.git"
    finally:
        server.shutdown()
        server.server_close()
        repo.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def test_fetch_over_http_sends_the_token_as_a_password(
    http_repository: tuple[GitRepository, str], tmp_path: Path
) -> None:
    repository, url = http_repository
    head = repository.commit({"Dockerfile": "FROM scratch\n"})
    repository.push()
    context = parse_git_context(f"{url}#main")
    assert context is not None and not context.local
    assert fetch(context, TOKEN, None, tmp_path / "c", tmp_path / "s") == head
    assert (tmp_path / "c" / "Dockerfile").is_file()
    with pytest.raises(GitFetchFailed) as refused:
        fetch(context, "wrong-token-456", None, tmp_path / "d", tmp_path / "t")
    assert url in str(refused.value) and "wrong-token-456" not in str(refused.value)
