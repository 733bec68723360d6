"""Bundles: export, offline verification, and tampering of every kind caught by name."""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatguard.events import ChatEvent, EventKind, Identity, Side
from chatguard.evidence import bundle, records
from chatguard.evidence.envelope import sign
from chatguard.evidence.keys import Signer, public_to_pem
from chatguard.evidence.ledger import Ledger, LedgerError
from chatguard.pipeline import SessionContext
from chatguard.policy.model import ActionType, Assessment, Match, PlannedAction, Signal
from tests.support.clock import FakeClock

TEXT = "add me on snap ok?"
BOB = SessionContext("s-bob", "127.0.0.1:5000", 0.0, identity=Identity("bob", "Bob"))


def chat(n: int, text: str) -> ChatEvent:
    raw = json.dumps({"type": "dm", "to": "amy", "text": text, "n": n})
    return ChatEvent(EventKind.DIRECT, Side.CLIENT, raw, "bob", None, ("amy",), text)


def build_log(data_dir: Path, *, captures: int = 3) -> Ledger:
    clock = FakeClock()
    ids = itertools.count()
    ledger = Ledger(data_dir, instance="test", now=clock, new_id=lambda: f"id-{next(ids)}")
    for n in range(captures):
        event = chat(n, TEXT)
        before = [records.message_entry(chat(100 + n, "hi amy"), clock() - 1, BOB)]
        assessment = Assessment(
            "dm:amy:bob",
            40.0,
            (Signal.ISOLATION,),
            (Match("r.isolation", Signal.ISOLATION, 1.0, ((0, 14),)),),
            (PlannedAction(ActionType.CAPTURE, {}, "r.isolation"),),
            policy_version="p1",
        )
        ledger.append(
            records.capture_record(
                record_id=f"cap-{n}",
                instance="test",
                at=clock(),
                conversation="dm:amy:bob",
                trigger="policy",
                reason="r.isolation",
                event=event,
                frame=event.raw,
                sender="bob",
                reported_person=None,
                assessment=assessment,
                params={},
                before=before,
                after_expected=0,
            )
        )
        ledger.append(
            records.context_record(
                record_id=f"other-{n}",
                instance="test",
                at=clock(),
                capture_id="x",
                conversation="room:lobby",
                after=[],
                complete=True,
            )
        )
        clock.advance(10)
        if n == 1:
            ledger.checkpoint()
    ledger.audit("mod:kim", "case.opened", "case:42", "", {"conversation": "dm:amy:bob"})
    return ledger


@functools.cache
def _bundle_bytes(root: str) -> bytes:
    ledger = build_log(Path(root))
    try:
        return bundle.export(
            ledger, case="42", actor="mod:kim", reason="hotline report", now=1_700_000_000.0
        )
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def bundle_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _bundle_bytes(str(tmp_path_factory.mktemp("bundle")))


def files_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return out.getvalue()


def test_a_bundle_verifies_offline(bundle_bytes: bytes) -> None:
    report = bundle.verify_bundle(bundle_bytes)
    assert report.ok, report
    assert report.subject == "case:42"
    assert report.origin == "chatguard/test"
    # Three captures, the case record and the export's own audit record.
    assert report.records == 5
    assert report.purged == 0
    [key_id] = report.key_ids
    assert bundle.verify_bundle(bundle_bytes, key=key_id).ok


def test_a_bundle_holds_what_the_issue_lists(bundle_bytes: bytes) -> None:
    files = files_of(bundle_bytes)
    manifest = json.loads(files["manifest.json"])
    assert manifest["bundle_version"] == 1
    assert manifest["producer"].startswith("chatguard ")
    assert manifest["created_at"] == "2023-11-14T22:13:20.000000Z"
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sig"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    kinds = [e["kind"] for e in manifest["records"]]
    assert kinds == ["capture", "capture", "capture", "audit", "audit"]
    # Records 0-3 are proven against the checkpoint at size 4 (written after
    # the second capture), later ones against the export's own checkpoint.
    latest = manifest["latest_checkpoint"]
    assert {"checkpoints/4.note", latest, "proofs/consistency-4.json"} <= set(files)
    proofs = {
        e["index"]: json.loads(files[f"proofs/{e['index']}.json"]) for e in manifest["records"]
    }
    assert proofs[0]["checkpoint"] == "checkpoints/4.note"
    assert proofs[max(proofs)]["checkpoint"] == latest
    assert files["VERIFY.md"].startswith(b"# Verifying this evidence bundle")
    assert manifest["signing_key"].encode() in files["VERIFY.md"]
    text = files["transcript.txt"].decode()
    assert ">> " in text
    assert "[[add me on snap]]{r.isolation} ok?" in text
    assert "hi amy" in text  # the context before
    assert (
        '<mark data-rules="r.isolation">add me on snap</mark>' in files["transcript.html"].decode()
    )


def test_a_conversation_bundle_and_unknown_subjects(tmp_path: Path) -> None:
    ledger = build_log(tmp_path)
    try:
        data = bundle.export(
            ledger, conversation="room:lobby", actor="a", reason="", now=1_700_000_000.0
        )
        assert bundle.verify_bundle(data).records == 4
        with pytest.raises(LedgerError, match="no audit record names case"):
            bundle.export(ledger, case="nope", actor="a", reason="", now=0.0)
        with pytest.raises(LedgerError, match="no evidence"):
            bundle.export(ledger, conversation="room:empty", actor="a", reason="", now=0.0)
        with pytest.raises(LedgerError, match="exactly one"):
            bundle.select(ledger)
    finally:
        ledger.close()


def test_proofs_are_against_an_earlier_checkpoint_when_one_covers_the_records(
    tmp_path: Path,
) -> None:
    ledger = build_log(tmp_path, captures=1)
    try:
        ledger.checkpoint()
        ledger.append_many(
            [
                records.context_record(
                    record_id=f"later-{i}",
                    instance="t",
                    at=0.0,
                    capture_id="x",
                    conversation="room:later",
                    after=[],
                    complete=True,
                )
                for i in range(5)
            ]
        )
        data = bundle.export(ledger, conversation="room:lobby", actor="a", reason="", now=0.0)
    finally:
        ledger.close()
    files = files_of(data)
    manifest = json.loads(files["manifest.json"])
    [older] = [n for n in files if n.startswith("proofs/consistency-")]
    consistency = json.loads(files[older])
    assert f"checkpoints/{consistency['new_size']}.note" == manifest["latest_checkpoint"]
    assert consistency["old_size"] < consistency["new_size"]
    assert consistency["path"]
    assert bundle.verify_bundle(data).ok


def test_purged_records_are_proven_by_their_leaf_hash(tmp_path: Path) -> None:
    ledger = build_log(tmp_path)
    try:
        ledger.purge([0], "retention")
        data = bundle.export(ledger, case="42", actor="a", reason="", now=0.0)
    finally:
        ledger.close()
    report = bundle.verify_bundle(data)
    assert report.ok
    assert report.purged == 1
    files = files_of(data)
    assert "records/0.json" not in files
    manifest = json.loads(files["manifest.json"])
    assert any(e.get("kind") == "tombstone" for e in manifest["records"])


def fails_naming(data: bytes, item: str | set[str]) -> None:
    report = bundle.verify_bundle(data)
    assert not report.ok
    names = {item} if isinstance(item, str) else item
    assert report.item in names, report


PICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PICK
@given(data=st.data())
def test_changing_any_byte_of_any_file_fails_naming_it(
    bundle_bytes: bytes, data: st.DataObject
) -> None:
    """Flip, insert or delete one byte anywhere in any file."""
    files = files_of(bundle_bytes)
    name = data.draw(st.sampled_from(sorted(files)))
    content = bytearray(files[name])
    position = data.draw(st.integers(0, len(content) - 1))
    change = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if change == "flip":
        content[position] ^= data.draw(st.integers(1, 255))
    elif change == "insert":
        content.insert(position, data.draw(st.integers(0, 255)))
    else:
        del content[position]
    files[name] = bytes(content)
    fails_naming(zip_of(files), name)


@PICK
@given(data=st.data())
def test_dropping_any_file_fails_naming_it(bundle_bytes: bytes, data: st.DataObject) -> None:
    files = files_of(bundle_bytes)
    name = data.draw(st.sampled_from(sorted(files)))
    del files[name]
    # Without its keys the manifest signature cannot be checked: that is what fails.
    fails_naming(zip_of(files), {name, "keys/"} if name.startswith("keys/") else name)


@PICK
@given(data=st.data())
def test_inserting_a_file_fails_naming_it(bundle_bytes: bytes, data: st.DataObject) -> None:
    files = files_of(bundle_bytes)
    name = data.draw(
        st.sampled_from(["records/999.json", "proofs/9.json", "extra.txt", "records/0.json.bak"])
    )
    files[name] = data.draw(st.binary(max_size=64))
    fails_naming(zip_of(files), name)


@PICK
@given(data=st.data())
def test_reordering_records_fails_naming_one_of_them(
    bundle_bytes: bytes, data: st.DataObject
) -> None:
    files = files_of(bundle_bytes)
    recs = sorted(n for n in files if n.startswith("records/"))
    a, b = data.draw(st.lists(st.sampled_from(recs), min_size=2, max_size=2, unique=True))
    files[a], files[b] = files[b], files[a]
    fails_naming(zip_of(files), {a, b})


@PICK
@given(data=st.data())
def test_inserting_or_dropping_a_record_in_the_manifest_fails(
    bundle_bytes: bytes, data: st.DataObject
) -> None:
    """Even a manifest consistent with the files fails without the instance key."""
    files = files_of(bundle_bytes)
    manifest = json.loads(files["manifest.json"])
    entries = manifest["records"]
    if data.draw(st.booleans()):
        del entries[data.draw(st.integers(0, len(entries) - 1))]
    else:
        entries.insert(data.draw(st.integers(0, len(entries))), {"index": 77, "id": "forged"})
    files["manifest.json"] = json.dumps(manifest).encode()
    fails_naming(zip_of(files), "manifest.json")


def test_a_bundle_re_signed_with_another_key_fails_the_fingerprint_check(
    bundle_bytes: bytes,
) -> None:
    files = files_of(bundle_bytes)
    manifest = json.loads(files["manifest.json"])
    original = manifest["signing_key"]
    forger = Signer.generate("chatguard/test")
    files[f"keys/{forger.key_id}.pem"] = public_to_pem(forger.verifier)
    manifest["files"][f"keys/{forger.key_id}.pem"] = hashlib.sha256(
        files[f"keys/{forger.key_id}.pem"]
    ).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sig"] = sign(bundle.MANIFEST_TYPE, files["manifest.json"], forger).to_json()
    forged = zip_of(files)
    # A key slipped into keys/ may sign the manifest, but it did not sign the
    # log's checkpoint, so the bundle fails even without a fingerprint...
    fails_naming(forged, manifest["latest_checkpoint"])
    # ...and with the operator's fingerprint, at the manifest signature.
    report = bundle.verify_bundle(forged, key=original)
    assert not report.ok
    assert report.item == "manifest.sig"


@pytest.mark.parametrize("junk", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_what_is_not_a_bundle_is_refused_clearly(junk: bytes) -> None:
    fails_naming(junk, "bundle")


def test_a_bundle_without_a_manifest_is_refused() -> None:
    fails_naming(zip_of({"records/0.json": b"{}"}), "manifest.json")
