"""The pure cryptographic core of the evidence log.

Each evidence record is a payload signed as exact bytes in a DSSE envelope
(``envelope``); the envelope's JSON bytes are appended as a leaf of an RFC
9162 Merkle tree (``merkle``); the tree head is published as a C2SP signed-note
checkpoint (``checkpoint``); the Ed25519 keys, including retired ones, live in
a ``keys.Keyring``. ``docs/evidence-format.md`` specifies every byte so that a
third party can verify evidence without this code.

Invariants of that core: it opens no socket, reads no clock and imports
nothing else of ChatGuard; ``keys.load_or_create_keyring`` and ``keys.rotate``
are its only functions that touch the disk.

Around the core: ``records`` (record payloads), ``context`` (context
windows), ``retention`` and ``transcript`` are pure too; ``segments`` (files),
``ledger`` (one data directory's log), ``bundle`` (export and offline
verification) and ``log`` (the running sidecar's sink) do the I/O. Import
those modules directly; this package namespace exports the core only.
"""

from __future__ import annotations

from chatguard.evidence.checkpoint import (
    Checkpoint,
    CheckpointError,
    OpenedNote,
    format_vkey,
    note_key_hash,
    open_note,
    open_signed_note,
    parse_vkey,
    sign_note,
)
from chatguard.evidence.envelope import (
    EVIDENCE_PAYLOAD_TYPE,
    Envelope,
    EnvelopeError,
    Signature,
    VerifyResult,
    pae,
    sign,
    verify,
)
from chatguard.evidence.keys import (
    KeyRecord,
    Keyring,
    KeyringError,
    Signer,
    Verifier,
    key_id_for,
    load_or_create_keyring,
    public_from_pem,
    public_to_pem,
    rotate,
    signer_from_pem,
    signer_to_pem,
)
from chatguard.evidence.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LeafHashes,
    LeafStore,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "EVIDENCE_PAYLOAD_TYPE",
    "HASH_SIZE",
    "Checkpoint",
    "CheckpointError",
    "Envelope",
    "EnvelopeError",
    "KeyRecord",
    "Keyring",
    "KeyringError",
    "LeafHashes",
    "LeafStore",
    "MerkleTree",
    "OpenedNote",
    "Signature",
    "Signer",
    "Verifier",
    "VerifyResult",
    "consistency_proof",
    "format_vkey",
    "inclusion_proof",
    "key_id_for",
    "leaf_hash",
    "load_or_create_keyring",
    "node_hash",
    "note_key_hash",
    "open_note",
    "open_signed_note",
    "pae",
    "parse_vkey",
    "public_from_pem",
    "public_to_pem",
    "root",
    "rotate",
    "sign",
    "sign_note",
    "signer_from_pem",
    "signer_to_pem",
    "verify",
    "verify_consistency",
    "verify_inclusion",
]
