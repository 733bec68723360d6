"""DSSE v1 envelopes: how one evidence record is signed and stored.

This module owns the signed form of a record. A record's payload is signed as
exact bytes with the DSSE pre-authentication encoding::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

(``LEN`` = byte length as ASCII decimal, no leading zeros; ``SP`` = 0x20), and
stored as the DSSE JSON envelope. The envelope's JSON bytes, exactly as
stored, are the leaf of the evidence Merkle tree.

Invariants:

* Signatures are made and checked over ``PAE(payload_type, payload)`` with the
  payload bytes exactly as received. Nothing is ever re-serialised before
  verifying: JSON that round-trips differently must not change a verdict.
* ``to_json`` is canonical and ``from_json`` (by default) accepts only the
  canonical form, so bytes and envelope are one-to-one. The canonical form is
  ``{"payload":B64,"payloadType":T,"signatures":[{"keyid":K,"sig":B64},...]}``
  with no whitespace, members in that order, standard padded base64, and
  ``keyid`` omitted when empty. ``payloadType`` and ``keyid`` are restricted
  to printable ASCII without ``"`` or ``\\``, so no string ever needs escaping.
* ``keyid`` narrows which key is tried, as DSSE allows: a signature whose
  ``keyid`` is not in the keyring is not tried against other keys. Only a
  signature without a ``keyid`` is tried against every key.

No I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from chatguard.evidence.keys import Keyring, Signer

__all__ = [
    "EVIDENCE_PAYLOAD_TYPE",
    "Envelope",
    "EnvelopeError",
    "Signature",
    "VerifyResult",
    "pae",
    "sign",
    "verify",
]

#: The payload type of every ChatGuard evidence record.
EVIDENCE_PAYLOAD_TYPE = "application/vnd.chatguard.evidence+json"

# Printable ASCII other than space, '"' and '\\': nothing JSON would escape.
_TOKEN = re.compile(r"[!#-\[\]-~]+")
_STD_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class EnvelopeError(ValueError):
    """An envelope is malformed or not in the form this log writes."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes a signature covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature: ``keyid`` is an unauthenticated hint, ``sig`` raw Ed25519 bytes."""

    keyid: str
    sig: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.keyid, str) or (self.keyid and not _TOKEN.fullmatch(self.keyid)):
            raise EnvelopeError(f"keyid {self.keyid!r} must be printable ASCII without quotes")
        if not isinstance(self.sig, bytes):
            raise EnvelopeError("sig must be bytes")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope: the payload bytes, their type, and signatures over both."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.payload_type, str) or not _TOKEN.fullmatch(self.payload_type):
            raise EnvelopeError(
                f"payloadType {self.payload_type!r} must be non-empty printable ASCII "
                "without spaces or quotes"
            )
        if not isinstance(self.payload, bytes):
            raise EnvelopeError("payload must be bytes")
        if not isinstance(self.signatures, tuple) or not all(
            isinstance(s, Signature) for s in self.signatures
        ):
            raise EnvelopeError("signatures must be a tuple of Signature")
        if not self.signatures:
            raise EnvelopeError("an envelope needs at least one signature")

    def to_json(self) -> bytes:
        """The canonical JSON bytes (see the module docstring)."""
        sigs = ",".join(
            (f'{{"keyid":"{s.keyid}",' if s.keyid else "{") + f'"sig":"{_b64(s.sig)}"}}'
            for s in self.signatures
        )
        return (
            f'{{"payload":"{_b64(self.payload)}","payloadType":"{self.payload_type}",'
            f'"signatures":[{sigs}]}}'
        ).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes, *, canonical: bool = True) -> Envelope:
        """Parse envelope JSON, rejecting anything malformed with a clear ``EnvelopeError``.

        With ``canonical=False`` any DSSE JSON envelope is accepted: whitespace
        and member order are free and URL-safe or unpadded base64 is allowed,
        as the DSSE spec asks of verifiers. Evidence leaves are always parsed
        canonically.
        """
        if not isinstance(data, bytes):
            raise EnvelopeError("envelope JSON must be bytes")
        try:
            text = data.decode("utf-8")
            doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except EnvelopeError:
            raise
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"envelope is not UTF-8: {exc}") from exc
        except (ValueError, RecursionError) as exc:
            raise EnvelopeError(f"envelope is not valid JSON: {exc}") from exc
        envelope = _from_doc(doc, lenient=not canonical)
        if canonical and envelope.to_json() != data:
            raise EnvelopeError("envelope JSON is not in canonical form")
        return envelope


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of ``verify``: truthy only if a known key's signature checked out."""

    ok: bool
    key_id: str | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def sign(payload_type: str, payload: bytes, signer: Signer) -> Envelope:
    """Sign ``payload`` as exact bytes; the envelope names the signer's key id."""
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (Signature(signer.key_id, signature),))


def verify(
    envelope: Envelope, keyring: Keyring, *, payload_type: str | None = None
) -> VerifyResult:
    """Check that at least one signature is valid under a key in ``keyring``.

    Verifies over ``PAE(payload_type, payload)`` from the envelope's own bytes.
    If ``payload_type`` is given, any other type is rejected (DSSE: reject
    unsupported types). Returns which key verified; never raises.
    """
    if payload_type is not None and envelope.payload_type != payload_type:
        return VerifyResult(
            False, reason=f"payload type {envelope.payload_type!r} is not {payload_type!r}"
        )
    message = pae(envelope.payload_type, envelope.payload)
    known: list[str] = []
    for s in envelope.signatures:
        if s.keyid:
            candidate = keyring.get(s.keyid)
            candidates = [] if candidate is None else [candidate]
        else:
            candidates = list(keyring)
        for verifier in candidates:
            known.append(verifier.key_id)
            if verifier.verify(message, s.sig):
                return VerifyResult(True, key_id=verifier.key_id)
    if not known:
        ids = ", ".join(s.keyid or "(none)" for s in envelope.signatures)
        return VerifyResult(False, reason=f"no signature is by a known key (keyids: {ids})")
    return VerifyResult(False, reason=f"signature does not verify under key {known[0]}")


# --- Parsing helpers --------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        # json.loads would keep the last one silently; two "payload" members
        # are two different readings of the same bytes.
        if key in obj:
            raise EnvelopeError(f"duplicate member {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise EnvelopeError(f"{name} is not JSON")


def _from_doc(doc: Any, *, lenient: bool) -> Envelope:
    if not isinstance(doc, dict):
        raise EnvelopeError("envelope must be a JSON object")
    _exact_members(doc, required={"payload", "payloadType", "signatures"}, where="envelope")
    payload_type = _string(doc["payloadType"], "payloadType")
    payload = _b64decode(_string(doc["payload"], "payload"), "payload", lenient=lenient)
    raw_sigs = doc["signatures"]
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise EnvelopeError("'signatures' must be a non-empty array")
    signatures = []
    for i, item in enumerate(raw_sigs):
        where = f"signatures[{i}]"
        if not isinstance(item, dict):
            raise EnvelopeError(f"'{where}' must be an object")
        _exact_members(item, required={"sig"}, optional={"keyid"}, where=where)
        keyid = _string(item.get("keyid", ""), f"{where}.keyid")
        sig = _b64decode(_string(item["sig"], f"{where}.sig"), f"{where}.sig", lenient=lenient)
        signatures.append(Signature(keyid, sig))
    return Envelope(payload_type, payload, tuple(signatures))


def _exact_members(
    obj: dict[str, Any], *, required: set[str], optional: set[str] | None = None, where: str
) -> None:
    missing = required - obj.keys()
    if missing:
        raise EnvelopeError(f"'{where}' is missing {', '.join(sorted(missing))}")
    unknown = obj.keys() - required - (optional or set())
    if unknown:
        raise EnvelopeError(f"'{where}' has unknown member(s) {', '.join(sorted(unknown))}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise EnvelopeError(f"'{where}' must be a string")
    return value


def _b64decode(text: str, where: str, *, lenient: bool) -> bytes:
    if lenient:
        if ("-" in text or "_" in text) and ("+" in text or "/" in text):
            raise EnvelopeError(f"'{where}' mixes standard and URL-safe base64")
        text = text.replace("-", "+").replace("_", "/").rstrip("=")
        text += "=" * (-len(text) % 4)
    if not _STD_B64.fullmatch(text):
        raise EnvelopeError(f"'{where}' is not standard padded base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise EnvelopeError(f"'{where}' is not valid base64: {exc}") from exc
    # Non-zero bits in the last character's padding would give a second
    # spelling of the same bytes.
    if not lenient and _b64(data) != text:
        raise EnvelopeError(f"'{where}' is not canonical base64")
    return data
