"""The evidence ledger: signed records in segment files, committed by a Merkle tree.

What it owns: the synchronous heart of the evidence log on one data
directory — keys, segment store, tree, the indexes that find records by id,
conversation and case, checkpoints, proofs, purge and whole-log verification.
``log.EvidenceLog`` wraps it for the running sidecar (a queue and a writer
task); the command line uses it directly.

Layout under ``<data_dir>/evidence/``: ``keys/`` (``keys.py``), ``segments/``
(``segments.py``), ``checkpoint`` (the latest signed checkpoint note) and
``LOCK`` (held while open: one writer per directory).

Invariants:

* A leaf is the stored DSSE envelope JSON, exactly; the leaf hash is over
  the plaintext envelope even when segments are encrypted, and a purge keeps
  the leaf hash, so encryption and purge never change a root.
* Nothing is acknowledged before it is durable: ``append`` syncs before it
  returns unless the caller asks to sync itself (group commit) — and then the
  caller acknowledges only after ``sync``.
* A checkpoint is signed only over what is durable, and recorded in the log
  (a ``checkpoint`` record) right after.
* A torn tail found on open is cut and a ``repair`` record says so.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import records
from .checkpoint import Checkpoint, open_note, sign_note
from .envelope import EVIDENCE_PAYLOAD_TYPE, Envelope, EnvelopeError, sign, verify
from .keys import Keyring, KeyringError, load_or_create_keyring
from .merkle import MerkleTree, leaf_hash
from .segments import DEFAULT_SEGMENT_BYTES, SegmentError, SegmentStore

__all__ = ["Ledger", "LedgerError", "LockedError", "StoredRecord", "origin_for"]


class LedgerError(OSError):
    """The ledger cannot be opened or a request on it is invalid (an OSError, so
    ``chatguard run`` reports it in one line)."""


class LockedError(LedgerError):
    """Another process has this evidence directory open."""


def origin_for(instance: str) -> str:
    """The log origin (and key name) for an instance id: a valid note key name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", instance) or "instance"
    return f"chatguard/{safe}"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record as the index knows it."""

    index: int
    record_id: str
    kind: str
    conversation: str | None


class Ledger:
    def __init__(
        self,
        data_dir: Path,
        *,
        instance: str | None,
        now: Callable[[], float],
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        key: bytes | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.directory = data_dir / "evidence"
        self.directory.mkdir(parents=True, exist_ok=True)
        # The instance that created the log names it for good (its origin is
        # the checkpoint key name); tools that open it later read it from here.
        named = self.directory / "INSTANCE"
        if named.exists():
            instance = instance or named.read_text("utf-8").strip()
        elif instance is None:
            raise LedgerError(f"{self.directory} holds no evidence log")
        else:
            named.write_text(instance + "\n", "utf-8")
        self.instance: str = instance
        self.origin = origin_for(instance)
        self.now = now
        self.new_id = new_id
        self._lock = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise LockedError(f"{self.directory} is open in another process") from None
        try:
            self.keyring: Keyring = load_or_create_keyring(self.directory, self.origin, now())
            self.store = SegmentStore(
                self.directory / "segments", segment_bytes=segment_bytes, key=key
            )
        except (SegmentError, KeyringError, OSError) as exc:
            os.close(self._lock)
            raise LedgerError(str(exc)) from exc
        self.tree = MerkleTree()
        self.by_id: dict[str, int] = {}
        self.kinds: list[str] = []
        self.ids: list[str | None] = []
        self.by_conversation: dict[str, list[int]] = {}
        self.checkpoints: list[tuple[int, bytes]] = []
        self.audits: list[int] = []
        for index, leaf, purged_hash in self.store:
            self.tree.append(purged_hash if purged_hash is not None else leaf_hash(leaf or b""))
            self._index(index, records.decode(Envelope.from_json(leaf).payload) if leaf else None)
        repair = self.store.opened_repair
        if repair is not None:
            self.append(
                records.repair_record(
                    record_id=self.new_id(),
                    instance=self.instance,
                    at=now(),
                    segment=repair.segment,
                    offset=repair.offset,
                    bytes_cut=repair.bytes_cut,
                )
            )

    # -- index -------------------------------------------------------------

    def _index(self, index: int, record: Mapping[str, Any] | None) -> None:
        if record is None:
            self.kinds.append("purged")
            self.ids.append(None)
            return
        kind = str(record["kind"])
        self.kinds.append(kind)
        self.ids.append(str(record["id"]))
        self.by_id[str(record["id"])] = index
        conversation = record.get("conversation")
        if isinstance(conversation, str):
            self.by_conversation.setdefault(conversation, []).append(index)
        if kind == "tombstone":
            # Purged records stay findable by id and conversation (their leaf
            # hashes are still proven in bundles).
            for purged in record.get("purged", ()):
                gone = int(purged["index"])
                self.by_id[str(purged["id"])] = gone
                where = purged.get("conversation")
                if isinstance(where, str):
                    listed = self.by_conversation.setdefault(where, [])
                    if gone not in listed:
                        listed.append(gone)
                        listed.sort()
        elif kind == "checkpoint":
            self.checkpoints.append((int(record["seq"]), str(record["note"]).encode("utf-8")))
        elif kind == "audit":
            self.audits.append(index)

    @property
    def size(self) -> int:
        return self.tree.size

    # -- writing -----------------------------------------------------------

    def append(self, record: dict[str, Any], *, sync: bool = True) -> int:
        """Sign and store one record (``seq`` set to its index); its index."""
        return self.append_many([record], sync=sync)[0]

    def append_many(self, batch: Iterable[dict[str, Any]], *, sync: bool = True) -> list[int]:
        signer = self.keyring.signer
        indices = []
        for record in batch:
            record["seq"] = self.store.__len__()
            payload = records.encode(record)
            leaf = sign(EVIDENCE_PAYLOAD_TYPE, payload, signer).to_json()
            index = self.store.append(leaf)
            self.tree.append(leaf_hash(leaf))
            self._index(index, record)
            indices.append(index)
        if sync:
            self.store.sync()
        return indices

    def sync(self) -> None:
        self.store.sync()

    def checkpoint(self) -> bytes:
        """Sign a checkpoint of everything durable, record it, and keep it as the latest."""
        self.store.sync()
        size = self.size
        note = sign_note(
            Checkpoint(self.origin, size, self.tree.root()).body(), self.keyring.signer
        )
        self.append(
            records.checkpoint_record(
                record_id=self.new_id(), instance=self.instance, at=self.now(), note=note
            )
        )
        # The record just appended is at index ``size``; checkpoints are keyed by
        # the size they commit to.
        self.checkpoints[-1] = (size, note)
        tmp = self.directory / "checkpoint.tmp"
        tmp.write_bytes(note)
        os.replace(tmp, self.directory / "checkpoint")
        return note

    def audit(
        self,
        actor: str,
        action: str,
        subject: str,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> str:
        record_id = self.new_id()
        self.append(
            records.audit_record(
                record_id=record_id,
                instance=self.instance,
                at=self.now(),
                actor=actor,
                action=action,
                subject=subject,
                reason=reason,
                details=details or {},
            )
        )
        return record_id

    def purge(self, indices: Iterable[int], reason: str) -> str | None:
        """Remove these records' payloads, keep their leaf hashes, write a tombstone."""
        chosen = sorted({i for i in indices if self.kinds[i] in ("capture", "context")})
        if not chosen:
            return None
        purged = []
        hashes = {}
        for index in chosen:
            record = self.record(index)
            if record is None:
                continue
            hashes[index] = self.tree.leaf_hashes[index]
            purged.append(
                {
                    "index": index,
                    "id": record["id"],
                    "kind": record["kind"],
                    "conversation": record.get("conversation"),
                    "leaf_hash": hashes[index].hex(),
                }
            )
        if not hashes:
            return None
        # The tombstone is durable before any payload goes, so a crash in
        # between leaves a log that says what it was about to remove.
        record_id = self.new_id()
        self.append(
            records.tombstone_record(
                record_id=record_id,
                instance=self.instance,
                at=self.now(),
                purged=purged,
                reason=reason,
            )
        )
        self.store.purge(hashes)
        for index in hashes:
            self.kinds[index] = "purged"
        return record_id

    def close(self) -> None:
        self.store.close()
        os.close(self._lock)

    # -- reading -----------------------------------------------------------

    def leaf(self, index: int) -> bytes | None:
        return self.store.read(index)

    def record(self, index: int) -> dict[str, Any] | None:
        leaf = self.store.read(index)
        return records.decode(Envelope.from_json(leaf).payload) if leaf is not None else None

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def case(self, case_id: str) -> tuple[set[str], set[str]]:
        """Conversations and evidence ids named by audit records of ``case:<id>``."""
        conversations: set[str] = set()
        evidence: set[str] = set()
        for index in self.audits:
            record = self.record(index)
            if record is None or record.get("subject") != f"case:{case_id}":
                continue
            details = record.get("details") or {}
            if isinstance(details.get("conversation"), str):
                conversations.add(details["conversation"])
            for item in details.get("evidence") or ():
                evidence.add(str(item))
        return conversations, evidence

    # -- verification ------------------------------------------------------

    def verify(self) -> list[str]:
        """Check every leaf, signature, sequence and checkpoint; the problems found."""
        problems: list[str] = []
        tree = MerkleTree()
        removed: dict[int, bytes] = {}  # purged index -> hash, as the log stores it
        announced: dict[int, str] = {}  # purged index -> hash hex, as tombstones list it
        for index, leaf, purged_hash in self.store:
            if leaf is None:
                tree.append(purged_hash or b"")
                removed[index] = purged_hash or b""
                continue
            tree.append(leaf_hash(leaf))
            try:
                envelope = Envelope.from_json(leaf)
            except EnvelopeError as exc:
                problems.append(f"record {index}: {exc}")
                continue
            result = verify(envelope, self.keyring, payload_type=EVIDENCE_PAYLOAD_TYPE)
            if not result:
                problems.append(f"record {index}: {result.reason}")
                continue
            try:
                record = records.decode(envelope.payload)
            except records.RecordError as exc:
                problems.append(f"record {index}: {exc}")
                continue
            if record["seq"] != index:
                problems.append(f"record {index}: seq is {record['seq']}")
            if record["kind"] == "tombstone":
                for purged in record.get("purged", ()):
                    announced[int(purged["index"])] = str(purged.get("leaf_hash"))
        for index, hashed in sorted(removed.items()):
            # A payload may only go the way a purge removes it: after a
            # tombstone naming it with the same leaf hash.
            if announced.get(index) != hashed.hex():
                problems.append(f"record {index}: payload removed without a matching tombstone")
        for size, note in self.checkpoints:
            try:
                checkpoint = open_note(note, self.keyring, origin=self.origin)
            except ValueError as exc:
                problems.append(f"checkpoint at size {size}: {exc}")
                continue
            if checkpoint.size > tree.size or tree.root(checkpoint.size) != checkpoint.root_hash:
                problems.append(
                    f"checkpoint at size {checkpoint.size}: root does not match the log"
                )
        return problems
