"""Ed25519 signing keys for the evidence log, and the keyring that holds them.

This module owns three things:

* ``Signer`` and ``Verifier``: an Ed25519 key pair and its public half, each
  carrying a *name* (the key name used in signed notes, normally the log's
  origin) and a *key id*.
* ``Keyring``: every public key the log has ever signed with, indexed by key
  id, plus the one ``active`` signer. Retired keys stay in the keyring for
  ever, so that evidence signed before a rotation still verifies after it.
* ``load_or_create_keyring`` and ``rotate``: the only code in the evidence core
  that touches the disk (see their docstrings for the file layout).

Invariants:

* A key id is the lowercase hex SHA-256 of the raw 32-byte Ed25519 public key.
  It depends on the key alone, never on its name, so renaming a log does not
  orphan old evidence.
* Key names are valid signed-note key names: non-empty, no Unicode whitespace,
  no ``+``. Checked on construction so that a bad name fails at start-up, not
  when the first checkpoint is signed.
* Private key material is never part of a ``repr``, a comparison, or a
  ``Verifier``.

Apart from the two disk functions, nothing here does I/O or reads a clock;
time is passed in as ``now`` (seconds since the epoch).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "KeyRecord",
    "Keyring",
    "KeyringError",
    "Signer",
    "Verifier",
    "is_valid_key_name",
    "key_id_for",
    "load_or_create_keyring",
    "public_from_pem",
    "public_to_pem",
    "rotate",
    "signer_from_pem",
    "signer_to_pem",
]

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64


class KeyringError(Exception):
    """A key or keyring could not be built, parsed, loaded or stored."""


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` may be used as a signed-note key name.

    The signed-note spec forbids empty names, Unicode spaces and ``+`` (the
    ``+`` separates fields in the verifier-key string format).
    """
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and all(ord(ch) >= 0x20 for ch in name)
    )


def _check_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise KeyringError(
            f"invalid key name {name!r}: must be non-empty, "
            "without spaces, '+' or control characters"
        )


def key_id_for(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True, slots=True)
class Verifier:
    """The public half of a signing key: checks signatures, cannot make them."""

    name: str
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_SIZE:
            raise KeyringError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} raw bytes")
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as exc:
            raise KeyringError(f"not an Ed25519 public key: {exc}") from exc
        # Frozen dataclass: the parsed key is derived state, set once here.
        object.__setattr__(self, "_key", key)

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature over exactly ``message``.

        Never raises for a malformed signature: a verifier that can be made to
        throw is a verifier that some caller will forget to guard.
        """
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 private key with a key name.

    Deliberately not a dataclass: it must not compare by value, hash by value,
    or show its key in a ``repr``.
    """

    __slots__ = ("_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._verifier = Verifier(name, raw)
        self._key = private_key

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A fresh key from the operating system's random source."""
        _check_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        """The key whose RFC 8032 32-byte private seed is ``seed``."""
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise KeyringError(f"an Ed25519 private seed is {SEED_SIZE} bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def public_key(self) -> bytes:
        return self._verifier.public_key

    @property
    def key_id(self) -> str:
        return self._verifier.key_id

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def seed(self) -> bytes:
        """The raw 32-byte private seed. Handle with care."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature over exactly ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id!r})"


# --- Serialisation (pure: bytes in, bytes out) ------------------------------


def signer_to_pem(signer: Signer) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (the file's permissions protect it)."""
    return signer._key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signer_from_pem(data: bytes, name: str) -> Signer:
    """Parse an unencrypted PKCS#8 PEM Ed25519 private key."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyringError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyringError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return Signer(name, key)


def public_to_pem(verifier: Verifier) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM, readable by ``openssl pkey -pubin``."""
    return verifier._key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_from_pem(data: bytes, name: str) -> Verifier:
    """Parse a SubjectPublicKeyInfo PEM Ed25519 public key."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyringError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyringError(f"expected an Ed25519 public key, got {type(key).__name__}")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Verifier(name, raw)


# --- Keyring ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """When a key came into use and when it was retired (``None``: still active)."""

    key_id: str
    name: str
    created: float
    retired: float | None = None


@dataclass(frozen=True, slots=True)
class Keyring:
    """Every known public key by key id, and the signer new evidence uses.

    ``verifiers`` includes the active key's verifier and all retired ones.
    ``active`` is ``None`` for a verify-only keyring (e.g. a third party that
    was handed the public keys).
    """

    verifiers: tuple[Verifier, ...]
    active: Signer | None = None
    history: tuple[KeyRecord, ...] = ()
    _by_id: Mapping[str, Verifier] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Verifier] = {}
        for v in self.verifiers:
            # Same key under two names would make "which key signed" ambiguous.
            if v.key_id in by_id and by_id[v.key_id] != v:
                raise KeyringError(f"key {v.key_id} appears twice with different names")
            by_id[v.key_id] = v
        if self.active is not None and by_id.get(self.active.key_id) != self.active.verifier:
            raise KeyringError("the active signer's public key is not in the keyring")
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def of(cls, active: Signer, retired: Iterable[Verifier] = ()) -> Keyring:
        """A keyring signing with ``active`` and still trusting ``retired``."""
        return cls((active.verifier, *retired), active)

    @classmethod
    def public(cls, verifiers: Iterable[Verifier]) -> Keyring:
        """A verify-only keyring."""
        return cls(tuple(verifiers))

    @property
    def signer(self) -> Signer:
        """The active signer; raises ``KeyringError`` for a verify-only keyring."""
        if self.active is None:
            raise KeyringError("this keyring has no active signing key")
        return self.active

    def get(self, key_id: str) -> Verifier | None:
        return self._by_id.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._by_id

    def __iter__(self) -> Iterator[Verifier]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


# --- Disk: the one place the evidence core does I/O --------------------------
#
# Layout under <data_dir>/keys/ (directory 0700, files 0600):
#   active.pem               PKCS#8 PEM of the active private key
#   retired/<key_id>.pub.pem SPKI PEM of each retired public key
#   keyring.json             {"version": 1, "active": <key_id>, "keys": [KeyRecord...]}

_KEYRING_VERSION = 1


def load_or_create_keyring(data_dir: pathlib.Path, name: str, now: float) -> Keyring:
    """Load the keyring from ``data_dir/keys``, generating a first key if there is none.

    This function and ``rotate`` are the only code in the evidence core that
    touches the disk. Files are written with mode 0600 (directories 0700) via
    write-to-temporary, fsync, rename, so a crash never leaves half a key.

    ``name`` is the key name for signed notes. An existing keyring created under
    another name is an error rather than silently renamed: every checkpoint
    verifier pins the (name, key) pair. Use ``rotate(..., name=...)`` to move
    to a new name.
    """
    _check_name(name)
    keys_dir = data_dir / "keys"
    if (keys_dir / "active.pem").exists() and not (keys_dir / "keyring.json").exists():
        _finish_interrupted_first_start(keys_dir, name, now)
    if not (keys_dir / "active.pem").exists():
        if (keys_dir / "keyring.json").exists():
            raise KeyringError(f"{keys_dir}/keyring.json exists but active.pem is missing")
        signer = Signer.generate(name)
        record = KeyRecord(signer.key_id, name, created=now)
        _ensure_dir(keys_dir)
        _ensure_dir(keys_dir / "retired")
        _write_private(keys_dir / "active.pem", signer_to_pem(signer))
        _write_private(keys_dir / "keyring.json", _records_to_json(signer.key_id, (record,)))
        return Keyring((signer.verifier,), signer, (record,))
    keyring = _load(keys_dir, now)
    if keyring.signer.name != name:
        raise KeyringError(
            f"the keyring in {keys_dir} signs as {keyring.signer.name!r}, not {name!r}; "
            "rotate to a key with the new name to change it"
        )
    return keyring


def rotate(data_dir: pathlib.Path, now: float, name: str | None = None) -> Keyring:
    """Retire the active key (keeping its public half) and start signing with a new one.

    The new key keeps the current key name unless ``name`` is given. The old
    private key is overwritten: nothing can be signed with it after rotation,
    but everything it signed still verifies with the returned keyring.

    Writes in an order that survives a crash at any point: the retired public
    key first, then the new ``active.pem``, then ``keyring.json``. A crash
    between the last two is repaired on the next load.
    """
    keys_dir = data_dir / "keys"
    current = _load(keys_dir, now)
    old = current.signer
    new_name = old.name if name is None else name
    new = Signer.generate(new_name)
    _write_private(keys_dir / "retired" / f"{old.key_id}.pub.pem", public_to_pem(old.verifier))
    _write_private(keys_dir / "active.pem", signer_to_pem(new))
    records = (
        *_retire(current.history, old.key_id, now),
        KeyRecord(new.key_id, new_name, created=now),
    )
    _write_private(keys_dir / "keyring.json", _records_to_json(new.key_id, records))
    retired = [v for v in current.verifiers if v.key_id != old.key_id]
    return Keyring((new.verifier, *retired, old.verifier), new, records)


def _retire(records: Iterable[KeyRecord], key_id: str, now: float) -> tuple[KeyRecord, ...]:
    return tuple(
        KeyRecord(r.key_id, r.name, r.created, now) if r.key_id == key_id else r for r in records
    )


def _load(keys_dir: pathlib.Path, now: float) -> Keyring:
    active_id, records = _records_from_json(keys_dir / "keyring.json")
    by_id = {r.key_id: r for r in records}
    if active_id not in by_id:
        raise KeyringError(f"{keys_dir}/keyring.json: active key {active_id} has no record")
    pem = (keys_dir / "active.pem").read_bytes()
    signer = signer_from_pem(pem, by_id[active_id].name)
    if signer.key_id != active_id:
        signer, records = _finish_interrupted_rotation(keys_dir, active_id, records, pem, now)
    verifiers = [signer.verifier]
    for record in records:
        if record.key_id == signer.key_id:
            continue
        path = keys_dir / "retired" / f"{record.key_id}.pub.pem"
        try:
            verifier = public_from_pem(path.read_bytes(), record.name)
        except FileNotFoundError as exc:
            raise KeyringError(f"retired public key {path} is missing") from exc
        # The file name is the key id; a mismatch means the file was swapped.
        if verifier.key_id != record.key_id:
            raise KeyringError(f"{path} holds key {verifier.key_id}, not {record.key_id}")
        verifiers.append(verifier)
    return Keyring(tuple(verifiers), signer, records)


def _finish_interrupted_first_start(keys_dir: pathlib.Path, name: str, now: float) -> None:
    # A first start wrote active.pem and crashed before keyring.json. Nothing
    # can have been signed yet, so recording the key is enough. If there are
    # retired keys, this is not a first start but a lost keyring.json.
    if any((keys_dir / "retired").glob("*.pub.pem")):
        raise KeyringError(f"{keys_dir}/keyring.json is missing but retired keys exist")
    signer = signer_from_pem((keys_dir / "active.pem").read_bytes(), name)
    record = KeyRecord(signer.key_id, name, created=now)
    _write_private(keys_dir / "keyring.json", _records_to_json(signer.key_id, (record,)))


def _finish_interrupted_rotation(
    keys_dir: pathlib.Path,
    old_id: str,
    records: tuple[KeyRecord, ...],
    pem: bytes,
    now: float,
) -> tuple[Signer, tuple[KeyRecord, ...]]:
    # active.pem was replaced but keyring.json was not: rotate() had already
    # saved the old public key, so the rotation can be completed. Without that
    # file the old key would be lost, so refuse rather than guess.
    if not (keys_dir / "retired" / f"{old_id}.pub.pem").exists():
        raise KeyringError(
            f"{keys_dir}/active.pem does not hold the active key {old_id} named in keyring.json"
        )
    old_name = next(r.name for r in records if r.key_id == old_id)
    signer = signer_from_pem(pem, old_name)
    fixed = (*_retire(records, old_id, now), KeyRecord(signer.key_id, old_name, created=now))
    _write_private(keys_dir / "keyring.json", _records_to_json(signer.key_id, fixed))
    return signer, fixed


def _records_to_json(active_id: str, records: Iterable[KeyRecord]) -> bytes:
    doc = {
        "version": _KEYRING_VERSION,
        "active": active_id,
        "keys": [
            {"key_id": r.key_id, "name": r.name, "created": r.created, "retired": r.retired}
            for r in records
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


def _records_from_json(path: pathlib.Path) -> tuple[str, tuple[KeyRecord, ...]]:
    try:
        doc: Any = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyringError(f"{path} is missing") from exc
    except ValueError as exc:
        raise KeyringError(f"{path} is not valid JSON: {exc}") from exc
    try:
        if doc["version"] != _KEYRING_VERSION:
            raise KeyringError(f"{path}: unsupported version {doc['version']!r}")
        active = doc["active"]
        records = tuple(
            KeyRecord(
                key_id=_typed(k["key_id"], str),
                name=_typed(k["name"], str),
                created=float(_typed(k["created"], (int, float))),
                retired=None if k["retired"] is None else float(_typed(k["retired"], (int, float))),
            )
            for k in doc["keys"]
        )
    except (KeyError, TypeError) as exc:
        raise KeyringError(f"{path} is malformed: {exc!r}") from exc
    if not isinstance(active, str):
        raise KeyringError(f"{path}: 'active' must be a key id string")
    return active, records


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"unexpected value {value!r}")
    return value


def _ensure_dir(path: pathlib.Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: pathlib.Path, data: bytes) -> None:
    _ensure_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # The umask can only remove bits, but an existing .tmp may have had others.
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    # Make the rename itself durable. Some file systems refuse fsync on a
    # directory; the data is still safe, only the rename's durability is weaker.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
