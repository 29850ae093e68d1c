"""Git repositories the tasks' tests build from: a bare repository made with the real
`git` (Debian's, from `make install`) and a working clone that commits and pushes into
it, so a push runs the bare repository's hooks as a git host's would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dockyard Tests",
    "GIT_AUTHOR_EMAIL": "tests@dockyard.invalid",
    "GIT_COMMITTER_NAME": "Dockyard Tests",
    "GIT_COMMITTER_EMAIL": "tests@dockyard.invalid",
}


def git(cwd: Path, *args: str) -> str:
    assert shutil.which("git"), "git is missing: run make install"
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **_IDENTITY},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class GitRepository:
    """`bare` (the one a context names) and `work` (a clone to commit from)."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.bare = root / "app.git"
        self.work = root / "work"
        self.branch = branch
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(self.bare))
        git(root, "init", "--quiet", f"--initial-branch={branch}", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write `files` (relative path -> text) and commit them; the commit's id."""
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, branch: str | None = None) -> str:
        """Push HEAD to `branch` (the repository's own by default); git's output (the
        hooks' included)."""
        target = branch or self.branch
        done = subprocess.run(
            ["git", "push", "--quiet", "origin", f"HEAD:refs/heads/{target}"],
            cwd=self.work,
            env={**os.environ, **_IDENTITY},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    def install_hook(self, name: str, script: str) -> None:
        hook = self.bare / "hooks" / name
        hook.write_text(script)
        hook.chmod(0o755)
