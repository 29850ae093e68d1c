"""Build contexts that are git repositories, as ACR names them:
`https://host/owner/repo.git[#branch-or-commit][:subfolder]`, fetched with dulwich (no
git binary) at the commit a trigger names or the branch's head, and written into a run's
context directory: the subfolder's files only, no `.git`, no submodules, no link that
points out of the context. Repositories on the server's own disk (a path, or `file://`)
are contexts only where `[tasks] local_git_contexts` allows them (tests, development):
anyone who may create a task could otherwise build from any repository the server can
read.

A context's access token goes to the git host as HTTP basic credentials and nowhere
else: never into a URL, a log line or an error message."""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dulwich.client import default_urllib3_manager, get_transport_and_path
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

from dockyard.common.errors import RequestInvalid

_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
_REMOTE = ("https://", "http://", "git://", "ssh://")
# GitHub and Azure DevOps take a personal access token as the password of any user.
_TOKEN_USER = "x-access-token"
NETWORK_TIMEOUT = 60.0  # seconds to connect, and between two reads


class GitContextInvalid(RequestInvalid):
    code = "InvalidParameter"


class GitFetchFailed(Exception):
    """The repository could not be fetched; the message names the repository without
    credentials and never holds the token."""


@dataclass(frozen=True)
class GitContext:
    """`url` the repository; `ref` a branch or a commit (None: the remote's HEAD);
    `subfolder` the context's directory within it ("" for the root)."""

    url: str
    ref: str | None
    subfolder: str

    @property
    def local(self) -> bool:
        return not self.url.startswith(_REMOTE)

    @property
    def branch(self) -> str | None:
        return None if self.ref is None or _COMMIT.fullmatch(self.ref) else self.ref

    @property
    def commit(self) -> str | None:
        return self.ref.lower() if self.ref and _COMMIT.fullmatch(self.ref) else None


def parse_git_context(text: str) -> GitContext | None:
    """The git repository a context names, or None when it names none (an upload's
    relative path, a tarball URL, `oci://`, `/dev/null`). A repository is a URL or a
    path ending in `.git` (before `#`), or a `file://` URL."""
    location, _, fragment = text.partition("#")
    url = location.rstrip("/")
    remote = url.startswith(_REMOTE)
    if not (url.endswith(".git") or url.startswith("file://")):
        return None
    if not remote and not (url.startswith("file://") or url.startswith("/")):
        return None
    ref, _, subfolder = fragment.partition(":")
    folder = PurePosixPath(subfolder.strip("/")) if subfolder.strip("/") else PurePosixPath()
    if folder.is_absolute() or ".." in folder.parts:
        raise GitContextInvalid(f"the context's subfolder {subfolder!r} leaves the repository")
    return GitContext(url, ref or None, "" if str(folder) == "." else str(folder))


def without_credentials(url: str) -> str:
    """`url` as it may be shown: no user or password in it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def same_repository(one: str, other: str) -> bool:
    """Whether two ways of writing a repository's URL name the same one: case of the
    host, a `.git` suffix, a trailing slash, credentials, a path or its `file://` URL."""
    return _canonical(one) == _canonical(other)


def _canonical(url: str) -> str:
    url = without_credentials(url.strip()).rstrip("/").removesuffix(".git")
    if url.startswith("/"):
        url = "file://" + url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))


def fetch(
    context: GitContext,
    token: str | None,
    commit: str | None,
    target: Path,
    scratch: Path,
) -> str:
    """The context's files at `commit` (else the context's own commit, else its branch's
    head, else the remote's HEAD) written into `target`; the commit fetched. `scratch`
    holds the fetched objects and is removed afterwards."""
    shown = without_credentials(context.url)
    options: dict[str, Any] = {"username": _TOKEN_USER, "password": token} if token else {}
    if context.url.startswith(("https://", "http://")):
        # A host that does not answer fails the run, rather than hold its thread for ever.
        options["pool_manager"] = default_urllib3_manager(None, timeout=NETWORK_TIMEOUT)
    try:
        client, path = get_transport_and_path(context.url, **options)
        scratch.mkdir(parents=True, exist_ok=True)
        repo = Repo.init_bare(str(scratch))
        try:
            wanted: list[bytes] = []

            def determine_wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
                wanted.append(_wanted(refs, context, commit))
                return wanted

            client.fetch(path, repo, determine_wants=determine_wants, depth=1)
            if not wanted:
                raise GitFetchFailed(f"{shown}: the repository answered no references")
            found = repo[wanted[0]]
            if not isinstance(found, Commit):
                raise GitFetchFailed(f"{shown}: {wanted[0].decode()} is no commit")
            _write_tree(repo, found.tree, context.subfolder, target)
            return wanted[0].decode()
        finally:
            repo.close()
    except GitFetchFailed:
        raise
    except Exception as exc:  # dulwich's errors have no common base
        raise GitFetchFailed(f"fetching {shown} failed: {_scrubbed(exc, token)}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _wanted(refs: dict[bytes, bytes], context: GitContext, commit: str | None) -> bytes:
    if commit or context.commit:
        return (commit or context.commit or "").lower().encode()
    if context.branch is not None:
        for name in (f"refs/heads/{context.branch}", f"refs/tags/{context.branch}"):
            if name.encode() in refs:
                return refs[name.encode()]
        raise GitFetchFailed(f"{without_credentials(context.url)} has no branch {context.branch!r}")
    if b"HEAD" in refs:
        return refs[b"HEAD"]
    heads = sorted(name for name in refs if name.startswith(b"refs/heads/"))
    if not heads:
        raise GitFetchFailed(f"{without_credentials(context.url)} has no branch")
    # A bare repository whose HEAD names no branch yet: its only (or first) branch.
    return refs[heads[0]]


def _write_tree(repo: Repo, tree_id: bytes, subfolder: str, target: Path) -> None:
    """The tree's files under `subfolder` into `target`: regular files (executable bit
    kept) and links that stay inside `target`; submodules are left out."""
    prefix = (subfolder + "/").encode() if subfolder else b""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    written = 0
    for entry in repo.object_store.iter_tree_contents(tree_id):
        if not entry.path.startswith(prefix) or stat.S_ISDIR(entry.mode):
            continue
        relative = PurePosixPath(entry.path[len(prefix) :].decode(errors="surrogateescape"))
        if relative.is_absolute() or ".." in relative.parts or ".git" in relative.parts:
            continue
        destination = root / relative
        if stat.S_ISLNK(entry.mode):
            link = _blob(repo, entry.sha).decode(errors="surrogateescape")
            resolved = (destination.parent / link).resolve()
            if not resolved.is_relative_to(root):
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link, destination)
        elif stat.S_ISREG(entry.mode):
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(_blob(repo, entry.sha))
            destination.chmod(0o755 if entry.mode & 0o100 else 0o644)
        else:  # a submodule (gitlink): ACR does not fetch them either
            continue
        written += 1
    if subfolder and written == 0:
        raise GitFetchFailed(f"the repository has no folder {subfolder!r}")


def _blob(repo: Repo, sha: bytes) -> bytes:
    found = repo[sha]
    if not isinstance(found, Blob):
        raise GitFetchFailed(f"{sha.decode()} is no file")
    return found.data


def _scrubbed(exc: BaseException, token: str | None) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace(token, "***") if token else text
