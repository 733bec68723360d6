"""Ledger: signed leaves on disk, reopening, checkpoints, repair, purge, verification."""

from __future__ import annotations

import itertools
import shutil
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatguard.evidence import records
from chatguard.evidence.checkpoint import open_note
from chatguard.evidence.envelope import Envelope
from chatguard.evidence.ledger import Ledger, LedgerError, LockedError, origin_for
from chatguard.evidence.merkle import leaf_hash, verify_inclusion
from tests.support.clock import FakeClock

Open = Callable[..., Ledger]


@pytest.fixture
def open_ledger(tmp_path: Path) -> Iterator[Open]:
    opened: list[Ledger] = []
    ids = itertools.count()

    def factory(instance: str | None = "t-1", **kw: Any) -> Ledger:
        kw.setdefault("now", FakeClock())
        kw.setdefault("new_id", lambda: f"id-{next(ids)}")
        ledger = Ledger(tmp_path, instance=instance, **kw)
        opened.append(ledger)
        return ledger

    yield factory
    for ledger in opened:
        if not ledger.store._fh.closed:
            ledger.close()


def message(conversation: str, n: int) -> dict[str, Any]:
    return records.context_record(
        record_id=f"m-{conversation}-{n}",
        instance="t-1",
        at=1_700_000_000.0 + n,
        capture_id="cap",
        conversation=conversation,
        after=[{"text": f"message {n}"}],
        complete=True,
    )


def test_records_are_signed_numbered_and_found_again_after_reopening(open_ledger: Open) -> None:
    ledger = open_ledger()
    indices = ledger.append_many([message("room:a", i) for i in range(3)])
    assert indices == [0, 1, 2]
    ledger.audit("mod:kim", "export", "case:1", "request", {"conversation": "room:a"})
    ledger.close()
    again = open_ledger()
    assert again.size == 4
    assert again.by_conversation["room:a"] == [0, 1, 2]
    assert again.kinds == ["context", "context", "context", "audit"]
    assert [again.record(i)["seq"] for i in range(4)] == [0, 1, 2, 3]  # type: ignore[index]
    assert again.case("1") == ({"room:a"}, set())
    assert again.verify() == []


def test_the_instance_is_remembered_for_tools_that_open_the_log_later(open_ledger: Open) -> None:
    open_ledger("sidecar a/1").close()
    ledger = open_ledger(None)
    assert (ledger.instance, ledger.origin) == ("sidecar a/1", "chatguard/sidecar-a-1")
    assert origin_for("") == "chatguard/instance"


def test_a_directory_without_a_log_is_refused_when_no_instance_is_named(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no evidence log"):
        Ledger(tmp_path / "empty", instance=None, now=FakeClock())


def test_one_writer_per_directory(open_ledger: Open) -> None:
    open_ledger()
    with pytest.raises(LockedError, match="another process"):
        open_ledger()


def test_a_checkpoint_commits_to_the_log_and_is_kept_in_it(open_ledger: Open) -> None:
    ledger = open_ledger()
    ledger.append_many([message("room:a", i) for i in range(5)])
    note = ledger.checkpoint()
    checkpoint = open_note(note, ledger.keyring, origin=ledger.origin)
    assert checkpoint.size == 5
    assert ledger.size == 6
    assert ledger.kinds[5] == "checkpoint"
    assert ledger.latest_checkpoint() == (5, note)
    leaf = ledger.leaf(2)
    assert leaf is not None
    proof = ledger.tree.inclusion_proof(2, 5)
    assert verify_inclusion(leaf_hash(leaf), 2, 5, proof, checkpoint.root_hash)
    assert (ledger.directory / "checkpoint").read_bytes() == note
    ledger.close()
    assert open_ledger().checkpoints == [(5, note)]


def test_a_torn_tail_is_cut_and_the_repair_is_recorded(open_ledger: Open) -> None:
    ledger = open_ledger()
    ledger.append_many([message("room:a", i) for i in range(3)])
    ledger.close()
    segment = ledger.directory / "segments" / "seg-000000000000.log"
    whole = segment.stat().st_size
    with open(segment, "ab") as fh:
        fh.write(b"\x00\x00\x01\x00half a reco")
    again = open_ledger()
    assert again.size == 4
    repair = again.record(3)
    assert repair is not None
    assert (repair["kind"], repair["offset"], repair["bytes_cut"]) == ("repair", whole, 15)
    assert again.verify() == []


def test_an_edited_byte_in_a_stored_record_is_found(open_ledger: Open) -> None:
    ledger = open_ledger()
    ledger.append_many([message("room:a", i) for i in range(3)])
    ledger.checkpoint()
    ledger.close()
    segment = ledger.directory / "segments" / "seg-000000000000.log"
    raw = segment.read_bytes()
    leaf = open_ledger(None)
    first = leaf.leaf(1)
    leaf.close()
    assert first is not None
    # Re-sign nothing, fix the CRC: an editor who knows the framing but not the key.
    payload = Envelope.from_json(first).payload
    forged_payload = payload.replace(b"message 1", b"message X")
    forged = Envelope(
        "application/vnd.chatguard.evidence+json",
        forged_payload,
        Envelope.from_json(first).signatures,
    ).to_json()
    old_frame = b"\x01" + first
    new_body = b"\x01" + forged
    assert len(new_body) == len(old_frame)
    at = raw.index(old_frame)
    header = len(new_body).to_bytes(4, "big") + zlib.crc32(new_body).to_bytes(4, "big")
    segment.write_bytes(raw[: at - 8] + header + new_body + raw[at + len(old_frame) :])
    problems = open_ledger(None).verify()
    assert any(p.startswith("record 1: signature does not verify") for p in problems)
    assert any("root does not match" in p for p in problems)


def test_purge_keeps_leaf_hashes_so_the_log_still_verifies(open_ledger: Open) -> None:
    ledger = open_ledger()
    ledger.append_many([message("room:a", i) for i in range(4)])
    ledger.audit("kim", "note", "case:1")
    note = ledger.checkpoint()
    root_before = ledger.tree.root(5)
    tombstone = ledger.purge([1, 2, 4], "retention")  # 4 is an audit record: never purged
    assert tombstone is not None
    assert ledger.kinds[:5] == ["context", "purged", "purged", "context", "audit"]
    assert ledger.leaf(1) is None
    assert ledger.record(1) is None
    record = ledger.record(ledger.by_id[tombstone])
    assert record is not None
    assert [p["index"] for p in record["purged"]] == [1, 2]
    assert ledger.purge([1, 2], "again") is None
    ledger.close()
    again = open_ledger(None)
    assert again.tree.root(5) == root_before
    assert open_note(note, again.keyring).root_hash == root_before
    assert again.verify() == []
    assert again.kinds[1] == "purged"


def test_encryption_at_rest_does_not_change_leaves_or_roots(tmp_path: Path) -> None:
    clock = FakeClock()
    plain = Ledger(tmp_path / "plain", instance="t", now=clock)
    plain.append_many([message("room:a", i) for i in range(3)])
    plain.close()
    # The same signing key for both logs (Ed25519 signatures are deterministic).
    shutil.copytree(plain.directory, tmp_path / "sealed" / "evidence", ignore=_only_keys)
    sealed = Ledger(tmp_path / "sealed", instance="t", now=clock, key=bytes(range(32)))
    sealed.append_many([message("room:a", i) for i in range(3)])
    assert sealed.tree.root() == plain.tree.root()
    assert sealed.leaf(1) == read_leaf(tmp_path / "plain", 1)
    stored = (sealed.directory / "segments" / "seg-000000000000.log").read_bytes()
    assert b"payload" not in stored
    assert sealed.verify() == []
    sealed.close()


def _only_keys(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in ("segments", "LOCK", "checkpoint")]


def read_leaf(data_dir: Path, index: int) -> bytes | None:
    ledger = Ledger(data_dir, instance=None, now=FakeClock())
    try:
        return ledger.leaf(index)
    finally:
        ledger.close()


def test_a_payload_removed_without_a_tombstone_is_found(open_ledger: Open) -> None:
    ledger = open_ledger()
    ledger.append_many([message("room:a", i) for i in range(3)])
    # Someone with access to the files replaces a payload by its leaf hash,
    # as a purge would, but writes no tombstone.
    ledger.store.purge({1: ledger.tree.leaf_hashes[1]})
    assert ledger.verify() == ["record 1: payload removed without a matching tombstone"]
