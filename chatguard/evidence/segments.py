"""Durable, append-only segment files: where evidence leaves live on disk.

What it owns: the byte layout of the log's files, finding and cutting a torn
tail after a crash, optional encryption at rest, and rewriting a segment when
payloads are purged. It knows nothing of signatures, records or the Merkle
tree: it stores *leaves* (the signed envelope bytes) and hands them back.

Layout: ``<dir>/seg-<first index, 12 digits>.log``, records in index order.
Each record is framed as::

    length (4 bytes, big endian) || CRC-32 of body (4 bytes) || body
    body = kind (1 byte) || data
      kind 0x01  data = the leaf bytes (plaintext)
      kind 0x02  data = 12-byte nonce || AES-256-GCM(leaf bytes), AAD = index (8 bytes BE)
      kind 0x03  data = the 32-byte leaf hash of a purged leaf (payload removed)

Invariants:

* ``append`` only writes; ``sync`` makes every appended record durable. The
  caller (the log) decides when to sync (per record or per group commit) and
  acknowledges nothing before it has.
* On open, only the *last* segment may end in a torn record; it is cut back
  to the last whole record and ``opened_repair`` says what was cut. A bad
  frame anywhere else — or one followed by a whole frame — is damage, not a
  crash: opening refuses with ``SegmentError`` naming the file and offset,
  and nothing is cut.
* A segment is never edited in place: a purge writes a new file, syncs it and
  renames it over the old one, so a crash leaves either version whole.
* Encrypted leaves are bound to their index (AAD), so ciphertexts cannot be
  moved between positions unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "MAX_RECORD_BYTES",
    "Repair",
    "SegmentError",
    "SegmentStore",
    "load_key",
]

#: A segment is closed once it reaches this size (the record that crosses it
#: is the last one in it).
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: No leaf is larger than this; a length field above it is a torn or damaged frame.
MAX_RECORD_BYTES = 16 * 1024 * 1024

_HEADER = struct.Struct(">II")
_PLAIN, _SEALED, _PURGED = 0x01, 0x02, 0x03
_NAME = re.compile(r"seg-(\d{12})\.log")
_NONCE = 12


class SegmentError(OSError):
    """The segment files are damaged (not merely torn at the tail) or unreadable."""


@dataclass(frozen=True, slots=True)
class Repair:
    """What opening cut from a torn tail."""

    segment: str
    offset: int
    bytes_cut: int
    records_kept: int


def load_key(path: Path) -> bytes:
    """A 32-byte AES key from a file: 32 raw bytes, or 64 hex or base64 characters."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SegmentError(f"{path}: cannot read the encryption key: {exc.strerror}") from exc
    if len(raw) == 32:
        return raw
    text = raw.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(text.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if len(key) == 32:
            return key
    raise SegmentError(f"{path}: not a 32-byte key (raw, hex or base64)")


class SegmentStore:
    """Leaves in segment files under one directory. Not thread-safe: one writer."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        key: bytes | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._aead = AESGCM(key) if key is not None else None
        self._random = random
        # (segment first index, path) in order; positions[i] = (segment slot, offset).
        self._segments: list[tuple[int, Path]] = []
        self._positions: list[tuple[int, int]] = []
        directory.mkdir(parents=True, exist_ok=True)
        self.opened_repair = self._open()
        self._fh = open(self._segments[-1][1], "ab")  # noqa: SIM115 - held open for appends
        self._size = self._fh.tell()

    # -- opening -----------------------------------------------------------

    def _open(self) -> Repair | None:
        names = sorted(p for p in self.directory.iterdir() if _NAME.fullmatch(p.name))
        if not names:
            path = self._segment_path(0)
            path.touch()
            _fsync_dir(self.directory)
            names = [path]
        repair = None
        for slot, path in enumerate(names):
            first = int(_NAME.fullmatch(path.name).group(1))  # type: ignore[union-attr]
            if first != len(self._positions):
                raise SegmentError(
                    f"{path}: starts at record {first}, expected {len(self._positions)}"
                )
            self._segments.append((first, path))
            data = path.read_bytes()
            offset = 0
            while offset < len(data):
                end = _frame_end(data, offset)
                if end is None:
                    break
                self._positions.append((slot, offset))
                offset = end
            if offset < len(data):
                # A crash tears only the end of the last segment. A bad frame
                # with whole frames after it was damaged later: refuse rather
                # than cut good records.
                if slot != len(names) - 1 or _any_frame_after(data, offset):
                    raise SegmentError(f"{path}: damaged record at byte {offset}")
                kept = len(self._positions) - first
                with open(path, "r+b") as fh:
                    fh.truncate(offset)
                    fh.flush()
                    os.fsync(fh.fileno())
                repair = Repair(path.name, offset, len(data) - offset, kept)
        return repair

    def _segment_path(self, first: int) -> Path:
        return self.directory / f"seg-{first:012d}.log"

    # -- writing -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._positions)

    def append(self, leaf: bytes) -> int:
        """Write one leaf (not yet durable: call ``sync``); its index."""
        if len(leaf) > MAX_RECORD_BYTES:
            raise SegmentError(f"a leaf of {len(leaf)} bytes exceeds {MAX_RECORD_BYTES}")
        index = len(self._positions)
        if self._size >= self.segment_bytes:
            self._roll(index)
        frame = _frame(self._body(index, leaf))
        self._fh.write(frame)
        self._positions.append((len(self._segments) - 1, self._size))
        self._size += len(frame)
        return index

    def sync(self) -> None:
        """Make every appended leaf durable."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _roll(self, first: int) -> None:
        self.sync()
        self._fh.close()
        path = self._segment_path(first)
        self._fh = open(path, "ab")  # noqa: SIM115
        _fsync_dir(self.directory)
        self._segments.append((first, path))
        self._size = 0

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()

    def __enter__(self) -> SegmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _body(self, index: int, leaf: bytes) -> bytes:
        if self._aead is None:
            return bytes([_PLAIN]) + leaf
        nonce = self._random(_NONCE)
        return bytes([_SEALED]) + nonce + self._aead.encrypt(nonce, leaf, _aad(index))

    # -- reading -----------------------------------------------------------

    def read(self, index: int) -> bytes | None:
        """The leaf at ``index``, or None when its payload was purged."""
        kind, data = self._raw(index)
        return self._leaf(index, kind, data)

    def leaf_hash_if_purged(self, index: int) -> bytes | None:
        kind, data = self._raw(index)
        return data if kind == _PURGED else None

    def __iter__(self) -> Iterator[tuple[int, bytes | None, bytes | None]]:
        """(index, leaf or None, stored leaf hash of a purged leaf or None), in order."""
        self._fh.flush()
        loaded_slot, data = -1, b""
        for index, (slot, offset) in enumerate(self._positions):
            if slot != loaded_slot:
                loaded_slot, data = slot, self._segments[slot][1].read_bytes()
            kind, body = _body_at(data, offset)
            if kind == _PURGED:
                yield index, None, body
            else:
                yield index, self._leaf(index, kind, body), None

    def _raw(self, index: int) -> tuple[int, bytes]:
        if not 0 <= index < len(self._positions):
            raise IndexError(index)
        slot, offset = self._positions[index]
        self._fh.flush()
        with open(self._segments[slot][1], "rb") as fh:
            fh.seek(offset)
            header = fh.read(_HEADER.size)
            length, _ = _HEADER.unpack(header)
            body = fh.read(length)
        return body[0], body[1:]

    def _leaf(self, index: int, kind: int, data: bytes) -> bytes | None:
        if kind == _PLAIN:
            return data
        if kind == _PURGED:
            return None
        if kind != _SEALED:
            raise SegmentError(f"record {index}: unknown kind {kind}")
        if self._aead is None:
            raise SegmentError(f"record {index} is encrypted and no key is configured")
        try:
            return self._aead.decrypt(data[:_NONCE], data[_NONCE:], _aad(index))
        except InvalidTag as exc:
            raise SegmentError(f"record {index} does not decrypt with the configured key") from exc

    # -- purging -----------------------------------------------------------

    def purge(self, hashes: dict[int, bytes]) -> None:
        """Replace the payloads at these indices by their leaf hashes (index -> hash)."""
        slots = sorted({self._positions[i][0] for i in hashes})
        self.sync()
        for slot in slots:
            _, path = self._segments[slot]
            data = path.read_bytes()
            out = bytearray()
            new_positions: list[tuple[int, int]] = []
            indices = [i for i, (s, _) in enumerate(self._positions) if s == slot]
            for index in indices:
                kind, body = _body_at(data, self._positions[index][1])
                if index in hashes:
                    kind, body = _PURGED, hashes[index]
                new_positions.append((slot, len(out)))
                out += _frame(bytes([kind]) + body)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(out)
                fh.flush()
                os.fsync(fh.fileno())
            last = slot == len(self._segments) - 1
            if last:
                self._fh.close()
            os.replace(tmp, path)
            _fsync_dir(self.directory)
            for index, position in zip(indices, new_positions, strict=True):
                self._positions[index] = position
            if last:
                self._fh = open(path, "ab")  # noqa: SIM115
                self._size = self._fh.tell()


def _aad(index: int) -> bytes:
    return index.to_bytes(8, "big")


def _frame(body: bytes) -> bytes:
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def _frame_end(data: bytes, offset: int) -> int | None:
    """The end of a whole, intact frame at ``offset``, or None."""
    if len(data) - offset < _HEADER.size:
        return None
    length: int
    crc: int
    length, crc = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    if length < 1 or length > MAX_RECORD_BYTES + 64 or start + length > len(data):
        return None
    body = data[start : start + length]
    if zlib.crc32(body) != crc or body[0] not in (_PLAIN, _SEALED, _PURGED):
        return None
    if body[0] == _PURGED and length != 1 + hashlib.sha256().digest_size:
        return None
    return start + length


def _any_frame_after(data: bytes, offset: int) -> bool:
    return any(_frame_end(data, p) is not None for p in range(offset + 1, len(data)))


def _body_at(data: bytes, offset: int) -> tuple[int, bytes]:
    length, _ = _HEADER.unpack_from(data, offset)
    body = data[offset + _HEADER.size : offset + _HEADER.size + length]
    return body[0], body[1:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
