"""Build contexts uploaded for runs: the tar.gz `az acr build` sends to the upload URL
(`listBuildSourceUploadUrl`), kept in this node's data directory until the run that
names it ends. Whole files (Blob's Put Blob) or blocks committed by a block list (Put
Block, Put Block List), each bounded by `[tasks] max_source_bytes`. Never reads a
request: the HTTP side is `blob_api.py`."""

from __future__ import annotations

import base64
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.common.errors import RequestInvalid

_NAME = re.compile(r"[0-9a-f]{32}\.tar\.gz")
_CHUNK = 1024 * 1024


class SourceTooLarge(RequestInvalid):
    code = "RequestBodyTooLarge"


class SourceInvalid(RequestInvalid):
    code = "InvalidInput"


class SourceUnknown(RequestInvalid):
    code = "BlobNotFound"


class BuildSources:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self._root = root
        self.max_bytes = max_bytes

    def new_name(self) -> str:
        return f"{uuid.uuid4().hex}.tar.gz"

    def relative_path(self, registry_id: int, name: str) -> str:
        """What the run request's `sourceLocation` names: `source/<registry>/<name>`."""
        return f"source/{registry_id}/{name}"

    def parse(self, registry_id: int, relative_path: str) -> str | None:
        """The upload's name in `relative_path` if it is one of this registry's."""
        prefix = f"source/{registry_id}/"
        name = relative_path.removeprefix(prefix)
        return name if relative_path.startswith(prefix) and _NAME.fullmatch(name) else None

    def path(self, registry_id: int, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise SourceUnknown(f"no upload named {name!r}")
        return self._root / str(registry_id) / name

    def _blocks(self, registry_id: int, name: str) -> Path:
        return self.path(registry_id, name).with_suffix(".blocks")

    async def _write(self, target: Path, body: AsyncIterator[bytes], room: int) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in body:
                    size += len(chunk)
                    if size > room:
                        raise SourceTooLarge(
                            f"a build context may hold at most {self.max_bytes} bytes"
                        )
                    out.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return size

    async def put(self, registry_id: int, name: str, body: AsyncIterator[bytes]) -> int:
        """Put Blob: the whole context at once."""
        return await self._write(self.path(registry_id, name), body, self.max_bytes)

    async def put_block(
        self, registry_id: int, name: str, block_id: str, body: AsyncIterator[bytes]
    ) -> int:
        """Put Block: one uncommitted block, named by its base64 id."""
        blocks = self._blocks(registry_id, name)
        held = sum(p.stat().st_size for p in blocks.glob("*")) if blocks.is_dir() else 0
        return await self._write(blocks / _block_file(block_id), body, self.max_bytes - held)

    def commit_blocks(self, registry_id: int, name: str, block_ids: list[str]) -> int:
        """Put Block List: the blocks in the list's order become the context."""
        blocks = self._blocks(registry_id, name)
        target = self.path(registry_id, name)
        partial = target.with_name(target.name + ".partial")
        size = 0
        try:
            with partial.open("wb") as out:
                for block_id in block_ids:
                    block = blocks / _block_file(block_id)
                    if not block.is_file():
                        raise SourceInvalid(f"block {block_id!r} was not uploaded")
                    with block.open("rb") as data:
                        shutil.copyfileobj(data, out, _CHUNK)
                    size += block.stat().st_size
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        shutil.rmtree(blocks, ignore_errors=True)
        return size

    def expire(self, before: float) -> int:
        """Remove uploads (and blocks) last written before `before` (Unix seconds) that
        no run took: their URL has long expired. How many went."""
        removed = 0
        for path in list(self._root.glob("*/*")) if self._root.is_dir() else []:
            try:
                if path.stat().st_mtime >= before:
                    continue
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed += 1
            except FileNotFoundError:
                continue
        return removed

    def remove(self, registry_id: int, name: str) -> None:
        self.path(registry_id, name).unlink(missing_ok=True)
        shutil.rmtree(self._blocks(registry_id, name), ignore_errors=True)


def _block_file(block_id: str) -> str:
    """A file name for a block id (base64 of at most 64 bytes, Blob's rule)."""
    try:
        raw = base64.b64decode(block_id, validate=True)
    except ValueError:
        raise SourceInvalid("a block id must be base64") from None
    if not raw or len(raw) > 64:
        raise SourceInvalid("a block id must be 1 to 64 bytes")
    return raw.hex()
