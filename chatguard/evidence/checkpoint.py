"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note form.

This module owns the text a log publishes to commit to its state. A
checkpoint body is::

    <origin>\\n
    <tree size, ASCII decimal, no leading zeros>\\n
    <base64 of the 32-byte RFC 6962 root hash>\\n
    [<extension line>\\n ...]

and a signed note is the body, a blank line, then one signature line per
signer::

    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

where "—" is the em dash U+2014, the signature covers the body bytes exactly
(including its final newline, excluding the blank line), and the key hash is
``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``. Verifier keys
travel as ``<name>+<8 hex digits of key hash>+<base64(0x01 || public key)>``,
the format of Go's ``golang.org/x/mod/sumdb/note``.

Invariants (from the signed-note spec):

* A note is valid UTF-8 with no control characters other than newline; the
  body ends at the *last* blank line.
* Signatures from unknown keys (name and key hash not both matching a
  trusted verifier) are ignored. A signature from a known key that fails to
  verify rejects the whole note. At least one known key must verify.
* Base64 is standard, padded and canonical, so one checkpoint has exactly one
  spelling and any flipped bit in a note is detected.

No I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from chatguard.evidence.keys import (
    PUBLIC_KEY_SIZE,
    KeyringError,
    Signer,
    Verifier,
    is_valid_key_name,
)
from chatguard.evidence.merkle import HASH_SIZE

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "OpenedNote",
    "format_vkey",
    "note_key_hash",
    "open_note",
    "open_signed_note",
    "parse_vkey",
    "sign_note",
]

#: The signed-note signature type byte for Ed25519.
ALG_ED25519 = 0x01
#: More signature lines than this make a note malformed (the spec requires at
#: least 16 to be accepted; Go's note package stops at 100).
MAX_SIGNATURES = 100
_MAX_SIZE = 2**64 - 1

_SIG_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_STD_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEX8 = re.compile(r"[0-9a-f]{8}")


class CheckpointError(ValueError):
    """A note or checkpoint is malformed, unsigned by a trusted key, or forged."""


def note_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key hash of an Ed25519 key under ``name``."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()[:4]


def format_vkey(verifier: Verifier) -> str:
    """The verifier key string ``<name>+<hex key hash>+<base64(0x01 || key)>``."""
    key_hash = note_key_hash(verifier.name, verifier.public_key)
    encoded = _b64(bytes([ALG_ED25519]) + verifier.public_key)
    return f"{verifier.name}+{key_hash.hex()}+{encoded}"


def parse_vkey(vkey: str) -> Verifier:
    """Parse a verifier key string, checking its key hash against its key."""
    name, _, rest = vkey.partition("+")
    hash_hex, _, key_b64 = rest.partition("+")
    if not is_valid_key_name(name) or not _HEX8.fullmatch(hash_hex):
        raise CheckpointError(f"malformed verifier key {vkey!r}")
    key = _b64decode(key_b64, "verifier key")
    if len(key) != 1 + PUBLIC_KEY_SIZE or key[0] != ALG_ED25519:
        raise CheckpointError(f"verifier key {vkey!r} is not an Ed25519 key")
    try:
        verifier = Verifier(name, key[1:])
    except KeyringError as exc:
        raise CheckpointError(f"verifier key {vkey!r}: {exc}") from exc
    if note_key_hash(name, verifier.public_key).hex() != hash_hex:
        raise CheckpointError(f"verifier key {vkey!r} has the wrong key hash")
    return verifier


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: its origin, its size, and the root hash at that size."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or not _is_line(self.origin):
            raise CheckpointError(f"origin {self.origin!r} must be one non-empty line of text")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 0 <= self.size <= _MAX_SIZE
        ):
            raise CheckpointError(f"tree size {self.size!r} must be an integer in [0, 2^64)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple) or not all(
            isinstance(e, str) and e and _is_line(e) for e in self.extensions
        ):
            raise CheckpointError("extensions must be non-empty lines of text")

    def body(self) -> bytes:
        """The note text: origin, size, base64 root hash, extensions, one per line."""
        lines = [self.origin, str(self.size), _b64(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint body strictly: only the exact output of ``body()`` parses."""
        text = _note_text(body)
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint body needs origin, size and root hash lines")
        if any(not line for line in lines):
            raise CheckpointError("checkpoint body has an empty line")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text) or int(size_text) > _MAX_SIZE:
            raise CheckpointError(f"tree size {size_text!r} is not a decimal in [0, 2^64)")
        root_hash = _b64decode(root_text, "root hash")
        if len(root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash is {len(root_hash)} bytes, not {HASH_SIZE}")
        return cls(origin, int(size_text), root_hash, tuple(extensions))


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose signatures checked out: its text and the keys that signed it."""

    text: bytes
    verified_by: tuple[Verifier, ...]


def sign_note(body: bytes, signer: Signer, *more: Signer) -> bytes:
    """Sign ``body`` (note text ending in a newline) with one or more keys."""
    text = _note_text(body)
    if not text.endswith("\n"):
        raise CheckpointError("note text must end with a newline")
    lines = []
    for s in (signer, *more):
        key_hash = note_key_hash(s.name, s.public_key)
        lines.append(f"{_SIG_PREFIX}{s.name} {_b64(key_hash + s.sign(body))}\n")
    return body + b"\n" + "".join(lines).encode("utf-8")


def open_signed_note(note: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Check a signed note's signatures against trusted ``verifiers``.

    Raises ``CheckpointError`` if the note is malformed, if a known key's
    signature is bad, or if no known key signed it.
    """
    text = _note_text(note)
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line before the signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block or not sig_block.endswith("\n"):
        raise CheckpointError("malformed note: signature lines must end with a newline")
    sig_lines = sig_block[:-1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {MAX_SIGNATURES} signatures")

    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        k = (v.name, note_key_hash(v.name, v.public_key))
        # Two trusted keys with the same name and hash: refusing is safer than
        # picking one (Go's note package does the same).
        if k in known and known[k] != v:
            raise CheckpointError(f"ambiguous trusted key {v.name}+{k[1].hex()}")
        known[k] = v

    body_bytes = body.encode("utf-8")
    verified: list[Verifier] = []
    unknown: list[str] = []
    for line in sig_lines:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"malformed note: {line!r} is not a signature line")
        name, space, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not space or not is_valid_key_name(name):
            raise CheckpointError(f"malformed note: bad key name in {line!r}")
        raw = _b64decode(sig_b64, f"malformed note: signature by {name}")
        if len(raw) < 5:
            raise CheckpointError(f"malformed note: signature by {name} is too short")
        key_hash, signature = raw[:4], raw[4:]
        verifier = known.get((name, key_hash))
        if verifier is None:
            unknown.append(f"{name}+{key_hash.hex()}")
            continue
        if verifier in verified:
            continue
        if not verifier.verify(body_bytes, signature):
            raise CheckpointError(f"invalid signature for key {name}+{key_hash.hex()}")
        verified.append(verifier)
    if not verified:
        raise CheckpointError(
            f"note has no signature from a trusted key (signed by: {', '.join(unknown)})"
        )
    return OpenedNote(body_bytes, tuple(verified))


def open_note(
    note: bytes, verifiers: Iterable[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it.

    If ``origin`` is given, a checkpoint for any other log is rejected, so a
    key shared between logs cannot pass one log's head off as another's.
    """
    opened = open_signed_note(note, verifiers)
    checkpoint = Checkpoint.from_body(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


# --- Helpers ----------------------------------------------------------------


def _is_line(text: str) -> bool:
    # No control characters (this covers newline) and no lone surrogates,
    # which could not be encoded as the UTF-8 a note must be.
    if any(ord(ch) < 0x20 for ch in text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _note_text(data: bytes) -> str:
    if not isinstance(data, bytes):
        raise CheckpointError("a note must be bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"malformed note: not UTF-8 ({exc})") from exc
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise CheckpointError("malformed note: control character")
    return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    if not _STD_B64.fullmatch(text) or not text:
        raise CheckpointError(f"{what} is not standard padded base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError(f"{what} is not valid base64: {exc}") from exc
    if _b64(data) != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return data
