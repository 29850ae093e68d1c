"""Blobs encrypted at rest: `EncryptedBlobStore` wraps another `BlobStore` (files or S3)
and keeps every byte it is given encrypted there, under the registry's data keys (a
`Keyring`). Knows nothing of where keys come from; never puts key material in an
exception or a log.

Format, version 1, of an encrypted blob or upload as the inner store holds it:

    block 0       header | nonce | ciphertext | tag
    block k > 0   nonce | ciphertext | tag

- Blocks are exactly `BLOCK_SIZE` (64 KiB) of stored bytes, but the last one, which is
  shorter (its plaintext may be empty): block k starts at byte k * 64 KiB of the stored
  object, and a short block ends it (an object cut at a block boundary reads as cut).
  Block 0 holds `BLOCK_SIZE - HEADER_SIZE - 28` bytes of plaintext, every other block
  `BLOCK_SIZE - 28`, so the plaintext size is arithmetic on the stored size.
- The header (`HEADER_SIZE`, 102 bytes): `MAGIC`, the format version (1 byte), the key
  id's length (1 byte), the key id (ASCII, zero-padded to 64 bytes), a random 32-byte
  salt.
- The blob's own key is HKDF-SHA256 of the data key the header names, with the salt
  and `INFO`: a key per blob keeps random 96-bit nonces far from AES-GCM's limits.
- Each block is AES-256-GCM with a fresh random 12-byte nonce and a 16-byte tag; its
  associated data is the header and the block's index (8 bytes, big-endian), so blocks
  cannot be reordered or moved between blobs.

Digests stay those of the plaintext (callers compute them). An encrypted blob is kept
under the digest `<algorithm>.aes256gcm:<hex>`: a name of its own, so the store never
sniffs content to tell it from the plaintext copy a registry stored before encryption
was turned on (legacy), which `open` and `stat` still serve. (OCI's digest grammar
allows `.` in an algorithm; it is a plain character in a file name and in an S3 key,
and needs no escaping in a URL.)

Uploads hold the same format. An append at plaintext byte `at` reads back the block
holding it (`BlobStore.read_upload_tail`: at most 64 KiB, from the block's start),
keeps its plaintext before `at` and continues the inner upload at the block's start,
writing that prefix again under a fresh nonce (a nonce is never used twice), then the
new bytes; only whole blocks reach the inner store, and closing the writer writes the
short last block. S3 keeps an upload as 8 MiB parts (a multiple of 64 KiB) it cannot
read back, then the rest, readable: the last block always lies in that tail. So does
the header, until the upload first reaches `UPLOAD_TAIL_ALIGNMENT` (8 MiB) of stored
bytes; just before it does, the writer stores a copy of its header as an upload of its
own (`<id>.header`), which an append further on reads instead, and which the upload's
abort removes. An append at byte 0 starts a new header (new salt, current key), and
writes the copy again when it gets past 8 MiB: the copy matches block 0 whenever block
0 cannot be read back (a stale copy, left by a restart that has not got that far, is
never read). An upload begun before encryption was turned on is not continued: its
append answers KeyError, and its client starts again. A crash that tears the block an
append rewrites (files only: S3 keeps the marker until `close`) does the same.

Background conversions, for the registry's jobs, each safe against a kill at any point
(every blob stays readable): `encrypt_existing` writes the encrypted copy of a legacy
blob completely, then deletes the plaintext; `reencrypt` writes a blob again under the
current key and publishes it with `BlobStore.replace_blob` (atomic). Both check the
plaintext against its digest on the way, and write through an upload of their own
(`convert-<uuid>`) that a kill leaves to the upload sweeper. A reader that meets a
block that does not authenticate (or whose bytes went) opens the blob again and, the
header having changed (rewritten under it), goes on with the new one. On S3 a
`reencrypt` killed half-way may leave the old ciphertext until the sweeper aborts its
upload, and a node that remembers the blob's old link reads that until then: retire
an old key only once no `convert-` upload is left (`upload_ids`).

Never offers `presigned_url` (the bucket holds ciphertext; callers fall back to
serving the bytes themselves), and `local_path` only for legacy blobs."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dockyard.common.errors import BlobCorrupt
from dockyard.storage.base import UPLOAD_TAIL_ALIGNMENT, BlobStore, PositionedReader, UploadWriter

BLOCK_SIZE = 64 << 10
MAGIC = b"DYBE"
VERSION = 1
KEY_ID_MAX = 64
SALT_SIZE = 32
HEADER_SIZE = len(MAGIC) + 2 + KEY_ID_MAX + SALT_SIZE
INFO = b"dockyard blob encryption v1: AES-256-GCM in 64 KiB blocks"
DATA_KEY_SIZE = 32
_NONCE_SIZE = 12
_TAG_SIZE = 16
_OVERHEAD = _NONCE_SIZE + _TAG_SIZE
FIRST_CAPACITY = BLOCK_SIZE - HEADER_SIZE - _OVERHEAD
CAPACITY = BLOCK_SIZE - _OVERHEAD
# At most this many blocks are read and decrypted in one call (4 MiB).
_RUN_BLOCKS = 64
# The algorithm of an encrypted copy's digest is the plaintext's with this suffix.
ENCRYPTED_SUFFIX = ".aes256gcm"
# The upload that keeps a copy of an upload's header once S3 can no longer read its own.
_HEADER_COPY = ".header"
_CONVERT_CHUNK = 1 << 20


class Keyring(Protocol):
    """The data keys of one registry (32-byte AES-256 keys), by id. Both raise
    `dockyard.common.errors.KeyUnavailable` when they cannot answer."""

    def current(self) -> tuple[str, bytes]:
        """(key id, key) that new writes use."""
        ...

    def key(self, key_id: str) -> bytes:
        """An older or the current key, by id."""
        ...


def encrypted_digest(digest: str) -> str:
    """The digest under which the inner store keeps the encrypted copy of `digest`."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}{ENCRYPTED_SUFFIX}:{encoded}"


def _plaintext_digest(stored: str) -> str | None:
    """The digest an inner store's digest is the encrypted copy of; None for a plaintext
    (legacy) one."""
    algorithm, _, encoded = stored.partition(":")
    if not algorithm.endswith(ENCRYPTED_SUFFIX):
        return None
    return f"{algorithm.removesuffix(ENCRYPTED_SUFFIX)}:{encoded}"


# -- layout --------------------------------------------------------------------------------


def _block_of(offset: int) -> int:
    """The block that holds plaintext byte `offset`."""
    return 0 if offset < FIRST_CAPACITY else 1 + (offset - FIRST_CAPACITY) // CAPACITY


def _block_start(block: int) -> int:
    """The plaintext offset of the block's first byte."""
    return 0 if block == 0 else FIRST_CAPACITY + (block - 1) * CAPACITY


def _capacity(block: int) -> int:
    return FIRST_CAPACITY if block == 0 else CAPACITY


def plaintext_size(stored: int) -> int:
    """The plaintext size of `stored` bytes in this format (nothing stored: empty). Of
    bytes cut short, the plaintext of their whole blocks."""
    full, rest = divmod(stored, BLOCK_SIZE)
    if full == 0:
        return max(0, rest - HEADER_SIZE - _OVERHEAD)
    return FIRST_CAPACITY + (full - 1) * CAPACITY + max(0, rest - _OVERHEAD)


@dataclass(frozen=True)
class _Header:
    raw: bytes
    key_id: str

    @classmethod
    def new(cls, key_id: str) -> _Header:
        encoded = key_id.encode("ascii")
        if not 0 < len(encoded) <= KEY_ID_MAX or b"\0" in encoded:
            raise ValueError(f"a key id is 1 to {KEY_ID_MAX} ASCII characters: {key_id!r}")
        raw = b"".join(
            (
                MAGIC,
                bytes((VERSION, len(encoded))),
                encoded.ljust(KEY_ID_MAX, b"\0"),
                os.urandom(SALT_SIZE),
            )
        )
        return cls(raw, key_id)

    @classmethod
    def parse(cls, raw: bytes, what: str) -> _Header:
        if len(raw) < HEADER_SIZE or not raw.startswith(MAGIC):
            raise BlobCorrupt(f"{what} is not in the encrypted format")
        version, length = raw[len(MAGIC)], raw[len(MAGIC) + 1]
        if version != VERSION or not 0 < length <= KEY_ID_MAX:
            raise BlobCorrupt(f"{what}: unknown encrypted format (version {version})")
        start = len(MAGIC) + 2
        try:
            key_id = raw[start : start + length].decode("ascii")
        except UnicodeDecodeError:
            raise BlobCorrupt(f"{what}: its header names no key id") from None
        return cls(raw[:HEADER_SIZE], key_id)

    @property
    def salt(self) -> bytes:
        return self.raw[-SALT_SIZE:]


class _Cipher:
    """The blob key of one header, sealing and opening its blocks."""

    def __init__(self, header: _Header, data_key: bytes) -> None:
        if len(data_key) != DATA_KEY_SIZE:
            raise ValueError(f"data keys are {DATA_KEY_SIZE} bytes (key {header.key_id})")
        self.header = header
        derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=header.salt, info=INFO)
        self._aead = AESGCM(derive.derive(data_key))

    def _associated(self, block: int) -> bytes:
        return self.header.raw + block.to_bytes(8, "big")

    def seal(self, block: int, plaintext: bytes | memoryview) -> bytes:
        """The stored bytes of a block (with the header before block 0's)."""
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, plaintext, self._associated(block))
        return b"".join((self.header.raw if block == 0 else b"", nonce, sealed))

    def seal_into(self, block: int, plaintext: memoryview, into: memoryview, at: int) -> int:
        """`seal` of a whole block's plaintext, written into `into` from `at`; where the
        block ends."""
        if block == 0:
            into[at : at + HEADER_SIZE] = self.header.raw
            at += HEADER_SIZE
        nonce = os.urandom(_NONCE_SIZE)
        into[at : at + _NONCE_SIZE] = nonce
        at += _NONCE_SIZE
        end = at + len(plaintext) + _TAG_SIZE
        self._aead.encrypt_into(nonce, plaintext, self._associated(block), into[at:end])
        return end

    def decrypt_into(self, block: int, stored: memoryview, into: memoryview) -> None:
        """`open` of a whole block's stored bytes, into `into` (CAPACITY bytes)."""
        self._aead.decrypt_into(
            bytes(stored[:_NONCE_SIZE]), stored[_NONCE_SIZE:], self._associated(block), into
        )

    def open(self, block: int, stored: bytes) -> bytes:
        """The plaintext of a block's stored bytes (block 0's after its header);
        `InvalidTag` if they do not authenticate."""
        if len(stored) < _OVERHEAD:
            raise InvalidTag()
        nonce = stored[:_NONCE_SIZE]
        return self._aead.decrypt(nonce, stored[_NONCE_SIZE:], self._associated(block))


def _cipher(keyring: Keyring, header: _Header) -> _Cipher:
    return _Cipher(header, keyring.key(header.key_id))


def _new_cipher(keyring: Keyring) -> _Cipher:
    key_id, key = keyring.current()
    return _Cipher(_Header.new(key_id), key)


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """`size` bytes of `source`, fewer only at its end (a read may return less)."""
    parts = []
    while size > 0 and (data := source.read(size)):
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def _read_exactly_into(source: BinaryIO, into: memoryview) -> int:
    """`_read_exactly` into a buffer the caller keeps: the stored bytes of a pull land in
    the same memory each time, not in a fresh object the allocator maps and faults in
    anew (docs/performance.md, "Encryption at rest")."""
    filled = 0
    while filled < len(into) and (got := source.readinto(into[filled:])):
        filled += got
    return filled


# -- writing -------------------------------------------------------------------------------


class _EncryptingWriter:
    """Encrypts an upload's bytes from the start of block `block`, with `prefix` (that
    block's plaintext to keep) first. The inner writer is opened with the first whole
    block, so the inner upload is cut back (on files, at once) only when its new bytes
    are at hand; `before_tail` runs once before the inner upload first reaches
    `UPLOAD_TAIL_ALIGNMENT` stored bytes (keeping a copy of the header)."""

    def __init__(
        self,
        open_inner: Callable[[], UploadWriter],
        cipher: _Cipher,
        block: int,
        prefix: bytes,
        before_tail: Callable[[], None] | None,
    ) -> None:
        self._open_inner = open_inner
        self._inner: UploadWriter | None = None
        self._cipher = cipher
        self._block = block
        self._stored = block * BLOCK_SIZE
        self._pending = bytearray(prefix)
        self._out = bytearray()
        self._before_tail = before_tail if self._stored < UPLOAD_TAIL_ALIGNMENT else None

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= _capacity(self._block):
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        """Seal every whole block pending (and, if `final`, the rest as the last block)
        and hand them to the inner writer in one write."""
        whole = []  # the plaintext ends of the whole blocks pending
        end = 0
        while len(self._pending) - end >= _capacity(self._block + len(whole)):
            end += _capacity(self._block + len(whole))
            whole.append(end)
        # Whole blocks sealed straight into one buffer (a header before block 0's), the
        # writer's own, as is the pending one: both keep their memory from one write
        # to the next (fresh megabytes each time cost more in page faults than AES).
        if len(self._out) < len(whole) * BLOCK_SIZE:
            self._out = bytearray(len(whole) * BLOCK_SIZE)
        with memoryview(self._pending) as view, memoryview(self._out) as into:
            start = at = 0
            for end in whole:
                at = self._cipher.seal_into(self._block, view[start:end], into, at)
                self._block += 1
                start = end
            last = self._cipher.seal(self._block, view[start:]) if final else b""
            self._send(into[:at])
        del self._pending[: len(self._pending) if final else start]
        self._send(last)

    def _send(self, data: bytes | memoryview) -> None:
        if not data:
            return
        if self._before_tail is not None and self._stored + len(data) >= UPLOAD_TAIL_ALIGNMENT:
            self._before_tail()
            self._before_tail = None
        if self._inner is None:
            self._inner = self._open_inner()
        self._inner.write(data)
        self._stored += len(data)

    def close(self) -> None:
        self._flush(final=True)
        assert self._inner is not None  # the last block is never empty of stored bytes
        self._inner.close()

    def abandon(self) -> None:
        """Keep what was given, as a last block (the inner store then keeps it or not,
        as its `abandon` does); if no whole block was written, the upload stays as it
        was."""
        if self._inner is None:
            return
        try:
            self._flush(final=True)
        finally:
            self._inner.abandon()


# -- reading -------------------------------------------------------------------------------


class _DecryptingReader(PositionedReader):
    """The plaintext of an encrypted object, with `seek`: a read fetches and opens only
    the blocks it needs (a seek alone does no I/O). A block that does not authenticate,
    or whose bytes went, is read once more after `reopen` (the object rewritten under
    the reader, as `reencrypt` does: a new header, a new blob key)."""

    def __init__(
        self,
        source: BinaryIO,
        keyring: Keyring,
        what: str,
        reopen: Callable[[], BinaryIO] | None = None,
        empty_is_empty: bool = False,
    ) -> None:
        """`what` names the object in errors; `empty_is_empty`: an object with no stored
        bytes is empty (an upload not yet written), not cut short."""
        self._source = source
        self._keyring = keyring
        self._what = what
        self._reopen = reopen
        self._empty_is_empty = empty_is_empty
        self._cipher: _Cipher | None = None
        self._pos = 0
        self._block: tuple[int, bytes, bool] | None = None  # index, plaintext, last
        self._run_buffer = bytearray()  # `_read_run`'s stored bytes, kept between runs

    def _size(self) -> int:
        return plaintext_size(self._stored_size())

    def _stored_size(self) -> int:
        return self._source.seek(0, os.SEEK_END)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = sys.maxsize
        run = self._read_run(size)
        if run is not None:
            return run  # type: ignore[return-value]  # a bytearray: bytes-like, not copied
        parts = []
        while size > 0:
            block = _block_of(self._pos)
            plaintext, last = self._plaintext(block)
            offset = self._pos - _block_start(block)
            part = plaintext[offset : offset + size]
            if part:
                parts.append(part)
                self._pos += len(part)
                size -= len(part)
            if last:
                break
        return b"".join(parts)

    def _read_run(self, size: int) -> bytearray | None:
        """The common case of a pull, cheaply: whole blocks after block 0, from a block's
        start, read in one call and decrypted straight into the buffer returned (no
        copy per block, no join). None where it does not apply, or at anything unusual
        (the end of the object, a block that does not authenticate): the block by block
        path answers those, with its checks and its reopen."""
        block, head = _block_of(self._pos), b""
        if self._pos != _block_start(block):
            # The rest of the block the last read ended in, which this reader holds.
            if self._block is None or self._block[0] != block or self._block[2]:
                return None
            head = self._block[1][self._pos - _block_start(block) :]
            block += 1
        count = min((size - len(head)) // CAPACITY, _RUN_BLOCKS)
        if count < 2 or block == 0 or self._cipher is None:
            return None
        cipher = self._cipher
        self._source.seek(block * BLOCK_SIZE)
        if len(self._run_buffer) < count * BLOCK_SIZE:
            self._run_buffer = bytearray(count * BLOCK_SIZE)
        buffer = memoryview(self._run_buffer)
        stored = buffer[: _read_exactly_into(self._source, buffer[: count * BLOCK_SIZE])]
        out = bytearray(len(head) + count * CAPACITY)
        out[: len(head)] = head
        into, filled = memoryview(out), len(head)
        for index in range(block, block + count):
            body = stored[(index - block) * BLOCK_SIZE : (index - block + 1) * BLOCK_SIZE]
            if len(body) < BLOCK_SIZE:
                break  # the last block: left to the block by block path, with its checks
            try:
                cipher.decrypt_into(index, body, into[filled : filled + CAPACITY])
            except InvalidTag:
                break
            filled += CAPACITY
        into.release()
        stored.release()
        buffer.release()
        if filled == len(head):
            return None
        del out[filled:]
        self._pos += filled
        return out

    def _plaintext(self, block: int) -> tuple[bytes, bool]:
        if self._block is None or self._block[0] != block:
            try:
                plaintext, last = self._open_block(block)
            except (InvalidTag, BlobCorrupt, FileNotFoundError) as error:
                if self._reopen is None:
                    if isinstance(error, InvalidTag):
                        raise self._corrupt(block) from error
                    raise
                self._source.close()
                self._source, self._cipher = self._reopen(), None
                try:
                    plaintext, last = self._open_block(block)
                except InvalidTag:
                    raise self._corrupt(block) from error
            self._block = (block, plaintext, last)
        return self._block[1], self._block[2]

    def _corrupt(self, block: int) -> BlobCorrupt:
        return BlobCorrupt(
            f"{self._what}: block {block} does not authenticate (a wrong key, or stored "
            "bytes altered or moved)"
        )

    def _open_block(self, block: int) -> tuple[bytes, bool]:
        # The header first, if block 0 does not bring it: the blocks after this one are
        # then read on from where it ends (on S3, from the same GET).
        if block > 0 and self._cipher is None and self._read_header() is None:
            return b"", True
        self._source.seek(block * BLOCK_SIZE)
        stored = _read_exactly(self._source, BLOCK_SIZE)
        if block == 0:
            if not stored and self._empty_is_empty:
                return b"", True
            header = _Header.parse(stored[:HEADER_SIZE], self._what)
            if self._cipher is None:
                self._cipher = _cipher(self._keyring, header)
            elif header != self._cipher.header:
                raise InvalidTag()  # rewritten under the reader: a new header
            body = stored[HEADER_SIZE:]
        else:
            if not stored:
                # Past the end of an object that ends with a short block, or cut short
                # (what the store says it holds is more, or ends with a whole block).
                stored_size = self._stored_size()
                if block * BLOCK_SIZE >= stored_size and stored_size % BLOCK_SIZE:
                    return b"", True
                raise BlobCorrupt(f"{self._what} is cut short before block {block}")
            body = stored
        assert self._cipher is not None
        return self._cipher.open(block, body), len(stored) < BLOCK_SIZE

    def _read_header(self) -> _Cipher | None:
        """The cipher of the object's header (None: an empty upload)."""
        self._source.seek(0)
        raw = _read_exactly(self._source, HEADER_SIZE)
        if not raw and self._empty_is_empty:
            return None
        self._cipher = _cipher(self._keyring, _Header.parse(raw, self._what))
        return self._cipher

    def close(self) -> None:
        self._source.close()
        super().close()


class _LegacyReader(io.RawIOBase):
    """A plaintext (legacy) blob; if its bytes go while it is read (`encrypt_existing`
    deleted them on S3, where a later read is a new GET), the encrypted copy, which was
    complete before they went, from the same offset."""

    def __init__(self, source: BinaryIO, encrypted: Callable[[], BinaryIO]) -> None:
        self._source = source
        self._encrypted: Callable[[], BinaryIO] | None = encrypted

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._source.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._source.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._source.read(size)
        except FileNotFoundError:
            if self._encrypted is None:
                raise
            position = self._source.tell()
            self._source.close()
            self._source, self._encrypted = self._encrypted(), None
            self._source.seek(position)
            return self._source.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._source.close()
        super().close()


# -- the store -----------------------------------------------------------------------------


class EncryptedBlobStore:
    """A `BlobStore` that keeps its blobs and uploads encrypted in `inner` (the format in
    the module's doc). Never offers `presigned_url` (the bucket holds ciphertext), nor
    `local_path` for an encrypted blob. Sizes, reads and digests are the plaintext's."""

    def __init__(self, inner: BlobStore, keyring: Keyring) -> None:
        self._inner = inner
        self._keyring = keyring
        self.remote = inner.remote

    # -- uploads ----------------------------------------------------------------------------

    def start_upload(self, upload_id: str) -> None:
        self._inner.start_upload(upload_id)

    def append_upload(self, upload_id: str, at: int) -> UploadWriter:
        if at == 0:
            if self._inner.upload_size(upload_id) is None:
                raise KeyError(upload_id)
            return self._writer(upload_id, _new_cipher(self._keyring), 0, b"")
        block = _block_of(at)
        found = self._upload_blocks(upload_id, block, 1)
        if found is None:
            raise KeyError(upload_id)  # fewer bytes than the caller knows of
        cipher, [stored] = found
        try:
            prefix = cipher.open(block, stored)[: at - _block_start(block)]
        except InvalidTag:
            # A last block torn by a crash, or altered: the client starts again.
            unknown = KeyError(upload_id)
            unknown.add_note(f"its block {block} does not authenticate")
            raise unknown from None
        if len(prefix) < at - _block_start(block):
            raise KeyError(upload_id)  # fewer bytes than the caller knows of
        return self._writer(upload_id, cipher, block, prefix)

    def _writer(self, upload_id: str, cipher: _Cipher, block: int, prefix: bytes) -> UploadWriter:
        def open_inner() -> UploadWriter:
            return self._inner.append_upload(upload_id, block * BLOCK_SIZE)

        def keep_header() -> None:
            copy = upload_id + _HEADER_COPY
            self._inner.start_upload(copy)
            writer = self._inner.append_upload(copy, 0)
            writer.write(cipher.header.raw)
            writer.close()

        return _EncryptingWriter(open_inner, cipher, block, prefix, keep_header)

    def _upload_blocks(
        self, upload_id: str, first: int, count: int
    ) -> tuple[_Cipher, list[bytes]] | None:
        """The cipher of an upload in progress, and the stored bytes of `count` blocks
        from block `first` (block 0's without its header; fewer blocks at the end),
        read from the upload's tail: the header from block 0 while that lies in it, else
        from its copy. None if there is no such block."""
        start = first * BLOCK_SIZE
        stored = self._inner.read_upload_tail(upload_id, start, count * BLOCK_SIZE)
        if first == 0:
            raw, stored = stored[:HEADER_SIZE], stored[HEADER_SIZE:]
        elif start < UPLOAD_TAIL_ALIGNMENT:
            raw = self._inner.read_upload_tail(upload_id, 0, HEADER_SIZE)
        else:
            raw = self._inner.read_upload_tail(upload_id + _HEADER_COPY, 0, HEADER_SIZE)
        if not stored:
            return None
        try:
            header = _Header.parse(raw, f"upload {upload_id}")
        except BlobCorrupt:
            # Not in this format (begun before encryption was turned on): start again.
            raise KeyError(upload_id) from None
        cipher = _cipher(self._keyring, header)
        if first == 0:
            blocks = [stored[: BLOCK_SIZE - HEADER_SIZE]]
            stored = stored[BLOCK_SIZE - HEADER_SIZE :]
        else:
            blocks = []
        blocks += [stored[i : i + BLOCK_SIZE] for i in range(0, len(stored), BLOCK_SIZE)]
        return cipher, blocks

    def upload_size(self, upload_id: str) -> int | None:
        stored = self._inner.upload_size(upload_id)
        return None if stored is None else plaintext_size(stored)

    def read_upload(self, upload_id: str) -> BinaryIO:
        source = self._inner.read_upload(upload_id)
        reader = _DecryptingReader(source, self._keyring, f"upload {upload_id}", None, True)
        return reader  # type: ignore[return-value]

    def read_upload_tail(self, upload_id: str, start: int, limit: int) -> bytes:
        if limit <= 0:
            return b""
        first, last = _block_of(start), _block_of(start + limit - 1)
        found = self._upload_blocks(upload_id, first, last - first + 1)
        if found is None:
            return b""  # past its end
        cipher, blocks = found
        plaintext = b"".join(
            self._open_upload_block(upload_id, cipher, first + index, stored)
            for index, stored in enumerate(blocks)
        )
        offset = start - _block_start(first)
        return plaintext[offset : offset + limit]

    @staticmethod
    def _open_upload_block(upload_id: str, cipher: _Cipher, block: int, stored: bytes) -> bytes:
        try:
            return cipher.open(block, stored)
        except InvalidTag:
            raise BlobCorrupt(f"upload {upload_id}: block {block} does not authenticate") from None

    def commit_upload(self, upload_id: str, digest: str) -> int:
        self._write_if_empty(upload_id)
        return plaintext_size(self._inner.commit_upload(upload_id, encrypted_digest(digest)))

    def replace_blob(self, upload_id: str, digest: str) -> int:
        self._write_if_empty(upload_id)
        return plaintext_size(self._inner.replace_blob(upload_id, encrypted_digest(digest)))

    def _write_if_empty(self, upload_id: str) -> None:
        """Give an upload started but never written its header and empty last block: an
        encrypted blob is never an empty object (which would read as one cut short)."""
        if self._inner.upload_size(upload_id) == 0:
            self.append_upload(upload_id, 0).close()

    def put_blob(self, upload_id: str, digest: str, data: bytes) -> int:
        stored = self._encrypt_whole(data)
        self._inner.put_blob(upload_id, encrypted_digest(digest), stored)
        return len(data)

    def _encrypt_whole(self, data: bytes) -> bytes:
        cipher = _new_cipher(self._keyring)
        sealed, block, offset = [], 0, 0
        with memoryview(data) as view:
            while True:
                end = offset + _capacity(block)
                sealed.append(cipher.seal(block, view[offset:end]))
                if end > len(view):
                    break
                block, offset = block + 1, end
        return b"".join(sealed)

    def abort_upload(self, upload_id: str) -> None:
        """The upload, then its header's copy: a crash between them leaves the copy,
        which `upload_ids` lists as the upload, for the sweeper."""
        self._inner.abort_upload(upload_id)
        self._inner.abort_upload(upload_id + _HEADER_COPY)

    def upload_ids(self) -> Iterator[tuple[str, float]]:
        newest: dict[str, float] = {}
        for upload_id, modified in self._inner.upload_ids():
            upload_id = upload_id.removesuffix(_HEADER_COPY)
            newest[upload_id] = max(newest.get(upload_id, modified), modified)
        yield from newest.items()

    def abort_multipart_before(self, cutoff: float) -> int:
        """The inner store's, if it has them (S3); else nothing to abort."""
        abort = getattr(self._inner, "abort_multipart_before", None)
        return 0 if abort is None else abort(cutoff)

    # -- blobs ------------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """The encrypted copy, else the plaintext one; if that went too, `encrypt_existing`
        converted the blob between the two looks: its encrypted copy."""
        try:
            return self._open_encrypted(digest)
        except FileNotFoundError:
            pass
        try:
            source = self._inner.open(digest)
        except FileNotFoundError:
            return self._open_encrypted(digest)
        legacy = _LegacyReader(source, lambda: self._open_encrypted(digest))
        return legacy  # type: ignore[return-value]

    def _open_encrypted(self, digest: str) -> BinaryIO:
        stored = encrypted_digest(digest)
        source = self._inner.open(stored)
        reader = _DecryptingReader(
            source, self._keyring, f"blob {digest}", lambda: self._inner.open(stored)
        )
        return reader  # type: ignore[return-value]

    def local_path(self, digest: str) -> Path | None:
        """None for an encrypted blob (its file holds ciphertext); a legacy blob's file."""
        if self._inner.stat(encrypted_digest(digest)) is not None:
            return None
        return self._inner.local_path(digest)

    def stat(self, digest: str) -> int | None:
        """As `open`, the encrypted copy's size looked at again if the plaintext went."""
        stored = self._inner.stat(encrypted_digest(digest))
        if stored is None and (size := self._inner.stat(digest)) is not None:
            return size
        if stored is None:
            stored = self._inner.stat(encrypted_digest(digest))
        return None if stored is None else plaintext_size(stored)

    def delete(self, *digests: str) -> None:
        """Both copies of each blob, in one call of the inner store."""
        self._inner.delete(*(encrypted_digest(digest) for digest in digests), *digests)

    def blob_digests(self) -> Iterator[str]:
        """Each blob once, whether stored encrypted, as plaintext, or both."""
        seen = set()
        for stored in self._inner.blob_digests():
            digest = _plaintext_digest(stored) or stored
            if digest not in seen:
                seen.add(digest)
                yield digest

    def check(self) -> None:
        """The inner store's check, and the current key: without it nothing is written."""
        self._inner.check()
        self._keyring.current()

    # -- conversions, for background jobs ---------------------------------------------------

    def legacy_digests(self) -> Iterator[str]:
        """Blobs with a plaintext copy (stored before encryption was turned on), which
        `encrypt_existing` converts."""
        for stored in self._inner.blob_digests():
            if _plaintext_digest(stored) is None:
                yield stored

    def encrypted_digests(self) -> Iterator[str]:
        """Blobs with an encrypted copy, which `reencrypt` may rewrite."""
        for stored in self._inner.blob_digests():
            digest = _plaintext_digest(stored)
            if digest is not None:
                yield digest

    def key_id_of(self, digest: str) -> str | None:
        """The id of the data key the blob's encrypted copy is under; None if it has
        none."""
        try:
            source = self._inner.open(encrypted_digest(digest))
        except FileNotFoundError:
            return None
        with source:
            return _Header.parse(_read_exactly(source, HEADER_SIZE), f"blob {digest}").key_id

    def encrypt_existing(self, digest: str) -> bool:
        """Turn the blob's plaintext copy into an encrypted one: written and published
        completely first (its plaintext checked against `digest`), then the plaintext
        deleted. False if it has no plaintext copy."""
        if self._inner.stat(digest) is None:
            return False
        if self._inner.stat(encrypted_digest(digest)) is None:
            with self._inner.open(digest) as source:
                self._convert(digest, source, self._inner.commit_upload)
        self._inner.delete(digest)
        return True

    def reencrypt(self, digest: str, keep: set[str]) -> bool:
        """Write the blob's encrypted copy again under the current key if its key is not
        in `keep`, replacing it atomically (readers opened before go on, see the
        module's doc). False if there was nothing to rewrite. `keep` must hold the
        current key's id (else every run would rewrite everything)."""
        current, _ = self._keyring.current()
        if current not in keep:
            raise ValueError("keep must name the current key")
        key_id = self.key_id_of(digest)
        if key_id is None or key_id in keep:
            return False
        with self._open_encrypted(digest) as source:
            self._convert(digest, source, self._inner.replace_blob)
        return True

    def _convert(self, digest: str, source: BinaryIO, publish: Callable[[str, str], int]) -> None:
        """Encrypt `source` under the current key into an upload of its own and publish
        that under the encrypted digest, if the plaintext matches `digest`; the upload
        goes either way (if this process dies first, the upload sweeper removes it)."""
        algorithm = digest.partition(":")[0]
        hasher = hashlib.new(algorithm)
        upload_id = f"convert-{uuid.uuid4()}"
        self._inner.start_upload(upload_id)
        try:
            writer = _EncryptingWriter(
                lambda: self._inner.append_upload(upload_id, 0),
                _new_cipher(self._keyring),
                0,
                b"",
                None,
            )
            try:
                while chunk := source.read(_CONVERT_CHUNK):
                    hasher.update(chunk)
                    writer.write(chunk)
            except BaseException:
                writer.abandon()
                raise
            writer.close()
            if f"{algorithm}:{hasher.hexdigest()}" != digest:
                raise BlobCorrupt(f"blob {digest}: its stored bytes have another digest")
            publish(upload_id, encrypted_digest(digest))
        finally:
            self._inner.abort_upload(upload_id)
