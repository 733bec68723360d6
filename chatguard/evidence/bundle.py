"""Evidence bundles: one zip a third party can verify offline, years later.

What it owns: choosing the records of a case or conversation, writing the
bundle (``export``) and checking one (``verify``). Layout (all paths in the
zip; ``docs/evidence-format.md`` §8 specifies each file)::

    manifest.json            bundle version, producer, creation time, origin,
                             subject, records, checkpoints, SHA-256 of every file
    manifest.sig             DSSE envelope: manifest.json signed by the instance key
    records/<index>.json     each record's envelope, the exact leaf bytes
    proofs/<index>.json      inclusion proof of that leaf in the earliest
                             checkpoint that covered it (named in the proof)
    checkpoints/<size>.note  those signed checkpoints and the latest one
    proofs/consistency-<size>.json  consistency proof: that checkpoint -> latest
    keys/<key id>.pem        every public key of the log (active and retired)
    keys/vkeys.txt           the same keys as signed-note verifier keys
    transcript.txt, transcript.html, VERIFY.md

Invariants:

* ``verify`` reads nothing but the bundle and trusts nothing in it until
  checked: the manifest signature first, then every file's hash, then each
  record (canonical envelope, signature, ``seq`` = index), its inclusion
  proof, the checkpoints and the consistency between them.
* ``verify`` names the first failing item (a file path, a record index or a
  checkpoint) and never raises on malformed input.
* Exporting is audited: the ``export`` audit record is written (durably)
  before the bundle is built, and is itself in the bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any

from .. import __version__
from . import records, transcript
from .checkpoint import Checkpoint, format_vkey, open_note
from .envelope import EVIDENCE_PAYLOAD_TYPE, Envelope, sign, verify
from .keys import Keyring, public_from_pem, public_to_pem
from .ledger import Ledger, LedgerError
from .merkle import LeafHashes, leaf_hash, node_hash, verify_consistency, verify_inclusion

__all__ = ["BUNDLE_VERSION", "MANIFEST_TYPE", "BundleReport", "export", "select", "verify_bundle"]

BUNDLE_VERSION = 1
MANIFEST_TYPE = "application/vnd.chatguard.bundle-manifest+json"
MAX_BUNDLE_FILES = 1_000_000
_RECORD = re.compile(r"records/(0|[1-9][0-9]*)\.json")


def select(
    ledger: Ledger, *, conversation: str | None = None, case: str | None = None
) -> tuple[str, list[int]]:
    """The subject name and the leaf indices a bundle of it holds."""
    if (conversation is None) == (case is None):
        raise LedgerError("name exactly one of a conversation or a case")
    if case is not None:
        conversations, evidence = ledger.case(case)
        if not conversations and not evidence:
            raise LedgerError(f"no audit record names case {case!r}")
        subject = f"case:{case}"
    else:
        assert conversation is not None
        conversations, evidence = {conversation}, set()
        subject = f"conversation:{conversation}"
    chosen: set[int] = set()
    for name in conversations:
        chosen.update(ledger.by_conversation.get(name, ()))
    chosen.update(ledger.by_id[e] for e in evidence if e in ledger.by_id)
    # Custody: every audit record about the subject or its conversations.
    subjects = {subject} | {f"conversation:{c}" for c in conversations}
    for index in ledger.audits:
        record = ledger.record(index)
        if record is not None and record.get("subject") in subjects:
            chosen.add(index)
    # Tombstones naming any chosen record say where a payload went.
    if chosen:
        for index, kind in enumerate(ledger.kinds):
            if kind == "tombstone":
                record = ledger.record(index)
                purged = {p.get("index") for p in (record or {}).get("purged", ())}
                if purged & chosen:
                    chosen.add(index)
    if not chosen:
        raise LedgerError(f"no evidence for {subject}")
    return subject, sorted(chosen)


def export(
    ledger: Ledger,
    *,
    conversation: str | None = None,
    case: str | None = None,
    actor: str,
    reason: str,
    now: float,
) -> bytes:
    """Audit the export, checkpoint, and build the bundle of a case or conversation."""
    subject, indices = select(ledger, conversation=conversation, case=case)
    ids = [ledger.ids[i] for i in indices]
    audit_id = ledger.audit(
        actor, "export", subject, reason, {"records": [i for i in ids if i], "count": len(ids)}
    )
    indices.append(ledger.by_id[audit_id])
    latest_note = ledger.checkpoint()
    latest_size = ledger.size - 1  # the checkpoint record follows what it commits
    # Each record is proven against the earliest checkpoint that covered it
    # (the log's head when the record was new), and each such checkpoint is
    # proven consistent with the latest: the log only grew since.
    stored = sorted(set(ledger.checkpoints) | {(latest_size, latest_note)})
    used: dict[int, bytes] = {}

    def covering(index: int) -> int:
        for size, note in stored:
            if size > index:
                used[size] = note
                return size
        raise LedgerError(f"no checkpoint covers record {index}")  # pragma: no cover

    subtrees = _Subtrees(ledger.tree.leaf_hashes)
    files: dict[str, bytes] = {}
    entries: list[dict[str, Any]] = []
    readable: list[dict[str, Any]] = []
    for index in indices:
        leaf = ledger.leaf(index)
        proof_size = covering(index)
        proof = subtrees.inclusion_proof(index, proof_size)
        entry: dict[str, Any] = {"index": index}
        if leaf is None:
            entry["purged"] = True
            entry["leaf_hash"] = ledger.tree.leaf_hashes[index].hex()
        else:
            files[f"records/{index}.json"] = leaf
            readable.append(records.decode(Envelope.from_json(leaf).payload))
            entry["id"] = readable[-1]["id"]
            entry["kind"] = readable[-1]["kind"]
        files[f"proofs/{index}.json"] = _json(
            {
                "index": index,
                "size": proof_size,
                "checkpoint": f"checkpoints/{proof_size}.note",
                "path": proof,
            }
        )
        entries.append(entry)
    used[latest_size] = latest_note
    for size, note in used.items():
        files[f"checkpoints/{size}.note"] = note
        if size != latest_size:
            files[f"proofs/consistency-{size}.json"] = _json(
                {
                    "old_size": size,
                    "new_size": latest_size,
                    "path": ledger.tree.consistency_proof(size, latest_size),
                }
            )
    vkeys = []
    for verifier in ledger.keyring:
        files[f"keys/{verifier.key_id}.pem"] = public_to_pem(verifier)
        vkeys.append(format_vkey(verifier))
    files["keys/vkeys.txt"] = "".join(v + "\n" for v in sorted(vkeys)).encode("utf-8")
    title = f"ChatGuard evidence: {subject}"
    lines = transcript.lines_of(readable)
    files["transcript.txt"] = transcript.render_text(title, lines).encode("utf-8")
    files["transcript.html"] = transcript.render_html(title, lines).encode("utf-8")
    signer = ledger.keyring.signer
    template = resources.files("chatguard.evidence").joinpath("VERIFY.md").read_text("utf-8")
    files["VERIFY.md"] = (
        Template(template)
        .safe_substitute(origin=ledger.origin, key_id=signer.key_id, subject=subject)
        .encode("utf-8")
    )
    manifest = _json(
        pretty=True,
        obj={
            "bundle_version": BUNDLE_VERSION,
            "producer": f"chatguard {__version__}",
            "created_at": records.iso(now),
            "origin": ledger.origin,
            "subject": subject,
            "signing_key": signer.key_id,
            "records": entries,
            "latest_checkpoint": f"checkpoints/{latest_size}.note",
            "files": {
                name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())
            },
        },
    )
    files["manifest.json"] = manifest
    files["manifest.sig"] = sign(MANIFEST_TYPE, manifest, signer).to_json()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), files[name])
    return out.getvalue()


class _Subtrees:
    """RFC 9162 inclusion proofs for many leaves of one tree, sharing subtree hashes.

    ``merkle.inclusion_proof`` recomputes every sibling subtree (O(n) per
    proof); a bundle of thousands of records needs them memoised (O(n) in all).
    The proofs are the same bytes; ``verify_bundle`` checks them with
    ``merkle.verify_inclusion``.
    """

    def __init__(self, leaves: LeafHashes) -> None:
        self.leaves = leaves
        self.cache: dict[tuple[int, int], bytes] = {}

    def hash(self, lo: int, hi: int) -> bytes:
        cached = self.cache.get((lo, hi))
        if cached is None:
            if hi - lo == 1:
                cached = self.leaves[lo]
            else:
                k = 1 << ((hi - lo - 1).bit_length() - 1)
                cached = node_hash(self.hash(lo, lo + k), self.hash(lo + k, hi))
            self.cache[(lo, hi)] = cached
        return cached

    def inclusion_proof(self, index: int, size: int) -> tuple[bytes, ...]:
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if index < lo + k:
                path.append(self.hash(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.hash(lo, lo + k))
                lo = lo + k
        path.reverse()
        return tuple(path)


def _json(obj: Any, *, pretty: bool = False) -> bytes:
    def default(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(type(value).__name__)

    # Only the manifest is indented for readers; proofs stay compact (and on
    # json's fast C encoder: there are thousands of them).
    text = json.dumps(
        obj,
        sort_keys=True,
        indent=1 if pretty else None,
        separators=None if pretty else (",", ":"),
        default=default,
    )
    return (text + "\n").encode("utf-8")


# -- verification ----------------------------------------------------------


@dataclass(slots=True)
class BundleReport:
    """The outcome of ``verify_bundle``: ``ok``, or the first failing ``item`` and why."""

    ok: bool = False
    item: str = ""
    reason: str = ""
    subject: str = ""
    origin: str = ""
    key_ids: list[str] = field(default_factory=list)
    records: int = 0
    purged: int = 0
    checkpoint_size: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "item": self.item,
            "reason": self.reason,
            "subject": self.subject,
            "origin": self.origin,
            "key_ids": self.key_ids,
            "records": self.records,
            "purged": self.purged,
            "checkpoint_size": self.checkpoint_size,
        }


class _Fail(Exception):
    def __init__(self, item: str, reason: str) -> None:
        super().__init__(f"{item}: {reason}")
        self.item, self.reason = item, reason


def verify_bundle(data: bytes, *, key: str | None = None) -> BundleReport:
    """Check a bundle offline. ``key``: the fingerprint (key id) that must have signed it."""
    report = BundleReport()
    try:
        _verify(data, key, report)
    except _Fail as fail:
        report.ok, report.item, report.reason = False, fail.item, fail.reason
        return report
    report.ok = True
    return report


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_BUNDLE_FILES:
                raise _Fail("bundle", "too many files")
            files: dict[str, bytes] = {}
            for info in infos:
                if info.filename in files:
                    raise _Fail(info.filename, "appears twice in the bundle")
                try:
                    files[info.filename] = zf.read(info)
                except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                    raise _Fail(info.filename, f"cannot be read: {exc}") from exc
            return files
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _Fail("bundle", f"not a readable zip file: {exc}") from exc


def _verify(data: bytes, key: str | None, report: BundleReport) -> None:
    files = _read_zip(data)
    for name in ("manifest.json", "manifest.sig"):
        if name not in files:
            raise _Fail(name, "missing")
    keyring = _keyring(files)
    report.key_ids = sorted(v.key_id for v in keyring)
    if key is not None and key not in keyring:
        raise _Fail("keys/", f"the bundle has no key with fingerprint {key}")
    trusted = Keyring.public(v for v in keyring if key is None or v.key_id == key)
    try:
        envelope = Envelope.from_json(files["manifest.sig"])
    except ValueError as exc:
        raise _Fail("manifest.sig", str(exc)) from exc
    result = verify(envelope, trusted, payload_type=MANIFEST_TYPE)
    if not result:
        raise _Fail("manifest.sig", result.reason)
    if envelope.payload != files["manifest.json"]:
        raise _Fail("manifest.json", "differs from the signed manifest")
    manifest = _load(files["manifest.json"], "manifest.json")
    report.subject = str(manifest.get("subject", ""))
    origin = report.origin = str(manifest.get("origin", ""))
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise _Fail("manifest.json", "has no file list")
    for name in sorted(set(listed) | set(files)):
        if name in ("manifest.json", "manifest.sig"):
            continue
        if name not in listed:
            raise _Fail(name, "is not listed in the manifest")
        if name not in files:
            raise _Fail(name, "is listed in the manifest but missing")
        if hashlib.sha256(files[name]).hexdigest() != listed[name]:
            raise _Fail(name, "SHA-256 does not match the manifest")
    # Files match the signed manifest; now check what they say.
    # The instance key that signed the manifest must be the one that signed
    # the latest checkpoint: a key slipped into keys/ cannot vouch for a bundle.
    manifest_key = trusted.get(result.key_id or "")
    assert manifest_key is not None
    latest_name = str(manifest.get("latest_checkpoint"))
    latest_cp = _checkpoint(files, latest_name, Keyring.public([manifest_key]), origin)
    report.checkpoint_size = latest_cp.size
    # Older checkpoints and records may be signed by retired keys of the log:
    # they are bound to the trusted latest checkpoint by consistency and
    # inclusion proofs, not by who signed them.
    checkpoints = _Checkpoints(files, keyring, origin, latest_name, latest_cp)
    entries = manifest.get("records")
    if not isinstance(entries, list) or not entries:
        raise _Fail("manifest.json", "lists no records")
    seen: set[int] = set()
    for entry in entries:
        index = entry.get("index") if isinstance(entry, dict) else None
        if not isinstance(index, int) or index in seen or index < 0:
            raise _Fail("manifest.json", f"bad or repeated record index {index!r}")
        seen.add(index)
        _verify_record(files, entry, index, keyring, checkpoints, report)
    extra = {n for n in files if _RECORD.fullmatch(n)} - {f"records/{i}.json" for i in seen}
    if extra:
        raise _Fail(sorted(extra)[0], "is not a record of this bundle")


def _verify_record(
    files: dict[str, bytes],
    entry: dict[str, Any],
    index: int,
    keyring: Keyring,
    checkpoints: _Checkpoints,
    report: BundleReport,
) -> None:
    name = f"records/{index}.json"
    if entry.get("purged"):
        try:
            hashed = bytes.fromhex(str(entry.get("leaf_hash")))
        except ValueError as exc:
            raise _Fail(name, "purged record has no valid leaf hash") from exc
        report.purged += 1
    else:
        leaf = files.get(name)
        if leaf is None:
            raise _Fail(name, "missing")
        try:
            envelope = Envelope.from_json(leaf)
        except ValueError as exc:
            raise _Fail(name, str(exc)) from exc
        result = verify(envelope, keyring, payload_type=EVIDENCE_PAYLOAD_TYPE)
        if not result:
            raise _Fail(name, result.reason)
        try:
            record = records.decode(envelope.payload)
        except records.RecordError as exc:
            raise _Fail(name, str(exc)) from exc
        if record["seq"] != index:
            raise _Fail(name, f"record seq {record['seq']} is not its index {index}")
        if record["id"] != entry.get("id"):
            raise _Fail(name, "record id differs from the manifest")
        hashed = leaf_hash(leaf)
        report.records += 1
    proof_name = f"proofs/{index}.json"
    proof = _load(files.get(proof_name, b""), proof_name)
    checkpoint = checkpoints.get(str(proof.get("checkpoint")))
    if proof.get("index") != index or proof.get("size") != checkpoint.size:
        raise _Fail(proof_name, "is not for this record and checkpoint")
    path = _hashes(proof.get("path"), proof_name)
    if not verify_inclusion(hashed, index, checkpoint.size, path, checkpoint.root_hash):
        raise _Fail(name, f"is not in the log at the checkpoint (size {checkpoint.size})")


class _Checkpoints:
    """Checkpoints of a bundle, each opened and proven consistent with the latest once."""

    def __init__(
        self,
        files: dict[str, bytes],
        keyring: Keyring,
        origin: str,
        latest_name: str,
        latest: Checkpoint,
    ) -> None:
        self.files, self.keyring, self.origin, self.latest = files, keyring, origin, latest
        self.opened = {latest_name: latest}

    def get(self, name: str) -> Checkpoint:
        checkpoint = self.opened.get(name)
        if checkpoint is not None:
            return checkpoint
        match = re.fullmatch(r"checkpoints/(0|[1-9][0-9]*)\.note", name)
        if match is None:
            raise _Fail(name, "is not a checkpoint of this bundle")
        checkpoint = _checkpoint(self.files, name, self.keyring, self.origin)
        if checkpoint.size != int(match.group(1)):
            raise _Fail(name, f"holds a checkpoint of size {checkpoint.size}")
        proof_name = f"proofs/consistency-{checkpoint.size}.json"
        proof = _load(self.files.get(proof_name, b""), proof_name)
        if (proof.get("old_size"), proof.get("new_size")) != (
            checkpoint.size,
            self.latest.size,
        ) or not verify_consistency(
            checkpoint.size,
            self.latest.size,
            checkpoint.root_hash,
            self.latest.root_hash,
            _hashes(proof.get("path"), proof_name),
        ):
            raise _Fail(proof_name, "does not prove the checkpoints consistent")
        self.opened[name] = checkpoint
        return checkpoint


def _keyring(files: dict[str, bytes]) -> Keyring:
    verifiers = []
    for name in sorted(files):
        match = re.fullmatch(r"keys/([0-9a-f]{64})\.pem", name)
        if not match:
            continue
        try:
            verifier = public_from_pem(files[name], "bundle")
        except Exception as exc:
            raise _Fail(name, f"not a public key: {exc}") from exc
        if verifier.key_id != match.group(1):
            raise _Fail(name, "file name is not the key's fingerprint")
        verifiers.append(verifier)
    if not verifiers:
        raise _Fail("keys/", "the bundle holds no public key")
    return Keyring.public(verifiers)


def _checkpoint(files: dict[str, bytes], name: str, keyring: Keyring, origin: str) -> Checkpoint:
    note = files.get(name)
    if note is None:
        raise _Fail(name, "missing")
    # Notes are signed under the log's origin as key name.
    named = [public_from_pem(public_to_pem(v), origin) for v in keyring]
    try:
        return open_note(note, named, origin=origin)
    except ValueError as exc:
        raise _Fail(name, str(exc)) from exc


def _load(data: bytes, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Fail(name, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _Fail(name, "not a JSON object")
    return doc


def _hashes(value: Any, name: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise _Fail(name, "proof path is not a list")
    try:
        out = tuple(bytes.fromhex(h) for h in value)
    except (TypeError, ValueError) as exc:
        raise _Fail(name, "proof path holds a non-hex hash") from exc
    return out
