"""SegmentStore: framing, rolling, torn tails, damage, encryption at rest, purge rewrites."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.evidence.segments import SegmentError, SegmentStore, load_key

KEY = bytes(range(32))


Open = Callable[..., SegmentStore]


@pytest.fixture
def open_store() -> Iterator[Open]:
    """Opens real stores; every one is closed at teardown."""
    opened: list[SegmentStore] = []

    def factory(directory: Path, **kw: Any) -> SegmentStore:
        opened.append(SegmentStore(directory, **kw))
        return opened[-1]

    yield factory
    for store in opened:
        store.close()


def leaves(n: int, size: int = 200) -> list[bytes]:
    return [(f"leaf-{i}-".encode() * size)[:size] for i in range(n)]


def fill(directory: Path, n: int, **kw: object) -> list[bytes]:
    data = leaves(n)
    with SegmentStore(directory, **kw) as store:  # type: ignore[arg-type]
        for leaf in data:
            store.append(leaf)
    return data


def test_leaves_come_back_in_order_after_reopening(open_store: Open, tmp_path: Path) -> None:
    data = fill(tmp_path, 10)
    store = open_store(tmp_path)
    assert len(store) == 10
    assert [store.read(i) for i in range(10)] == data
    assert [leaf for _, leaf, _ in store] == data
    assert store.opened_repair is None


def test_segments_roll_at_their_size_and_read_across_files(
    open_store: Open, tmp_path: Path
) -> None:
    data = fill(tmp_path, 50, segment_bytes=4096)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) > 1
    assert names[0] == "seg-000000000000.log"
    store = open_store(tmp_path, segment_bytes=4096)
    assert [store.read(i) for i in range(50)] == data
    store.append(b"one more")
    assert store.read(50) == b"one more"


@pytest.mark.parametrize("cut", [1, 3, 8, 9, 20, 47])
def test_a_torn_tail_is_cut_back_to_the_last_whole_record(
    open_store: Open, tmp_path: Path, cut: int
) -> None:
    data = fill(tmp_path, 5)
    path = tmp_path / "seg-000000000000.log"
    whole = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(os.urandom(64)[:cut] if cut < 8 else b"\x00\x00\x00\x30" + b"\x00" * (cut - 4))
    store = open_store(tmp_path)
    assert len(store) == 5
    assert store.opened_repair is not None
    assert store.opened_repair.offset == whole
    assert store.opened_repair.bytes_cut == cut
    assert store.opened_repair.records_kept == 5
    assert path.stat().st_size == whole
    store.append(b"after the repair")
    assert [store.read(i) for i in range(6)] == [*data, b"after the repair"]


def test_a_half_written_last_record_is_cut(open_store: Open, tmp_path: Path) -> None:
    fill(tmp_path, 3)
    path = tmp_path / "seg-000000000000.log"
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])
    store = open_store(tmp_path)
    assert len(store) == 2
    assert store.opened_repair is not None
    assert store.opened_repair.records_kept == 2


def test_damage_before_the_last_segment_is_refused_not_repaired(
    open_store: Open, tmp_path: Path
) -> None:
    fill(tmp_path, 50, segment_bytes=4096)
    first = tmp_path / "seg-000000000000.log"
    raw = bytearray(first.read_bytes())
    raw[100] ^= 0x01
    first.write_bytes(bytes(raw))
    with pytest.raises(SegmentError, match=r"seg-000000000000\.log: damaged record"):
        open_store(tmp_path, segment_bytes=4096)


def test_damage_inside_the_last_segment_is_refused_not_cut(
    open_store: Open, tmp_path: Path
) -> None:
    fill(tmp_path, 5)
    path = tmp_path / "seg-000000000000.log"
    raw = bytearray(path.read_bytes())
    raw[20] ^= 0x01  # inside record 0; records 1-4 follow intact
    path.write_bytes(bytes(raw))
    with pytest.raises(SegmentError, match="damaged record at byte 0"):
        open_store(tmp_path)
    assert path.read_bytes() == bytes(raw)


def test_a_missing_segment_is_refused(open_store: Open, tmp_path: Path) -> None:
    fill(tmp_path, 80, segment_bytes=4096)
    names = sorted(tmp_path.iterdir())
    assert len(names) >= 3
    names[1].unlink()
    with pytest.raises(SegmentError, match="expected"):
        open_store(tmp_path, segment_bytes=4096)


def test_encrypted_leaves_are_not_stored_in_clear_and_read_back(
    open_store: Open, tmp_path: Path
) -> None:
    data = fill(tmp_path, 4, key=KEY)
    raw = (tmp_path / "seg-000000000000.log").read_bytes()
    assert b"leaf-" not in raw
    store = open_store(tmp_path, key=KEY)
    assert [store.read(i) for i in range(4)] == data


def test_encrypted_leaves_need_the_right_key(open_store: Open, tmp_path: Path) -> None:
    fill(tmp_path, 2, key=KEY)
    with pytest.raises(SegmentError, match="no key"):
        open_store(tmp_path).read(0)
    with pytest.raises(SegmentError, match="does not decrypt"):
        open_store(tmp_path, key=bytes(32)).read(0)


def test_encrypted_leaves_are_bound_to_their_position(open_store: Open, tmp_path: Path) -> None:
    store = open_store(tmp_path, key=KEY)
    store.append(b"first")
    store.append(b"second")
    store.close()
    path = tmp_path / "seg-000000000000.log"
    raw = path.read_bytes()
    half = len(raw) // 2
    path.write_bytes(raw[half:] + raw[:half])  # same-size frames, swapped
    store = open_store(tmp_path, key=KEY)
    with pytest.raises(SegmentError, match="does not decrypt"):
        store.read(0)


@pytest.mark.parametrize("key", [None, KEY])
def test_purge_replaces_payloads_by_leaf_hashes_and_keeps_the_rest(
    open_store: Open, tmp_path: Path, key: bytes | None
) -> None:
    data = fill(tmp_path, 60, segment_bytes=4096, key=key)
    store = open_store(tmp_path, segment_bytes=4096, key=key)
    hashes = {i: hashlib.sha256(data[i]).digest() for i in (0, 1, 30, 59)}
    store.purge(hashes)
    for i in range(60):
        if i in hashes:
            assert store.read(i) is None
            assert store.leaf_hash_if_purged(i) == hashes[i]
        else:
            assert store.read(i) == data[i]
    store.append(b"still appendable")
    store.close()
    reopened = open_store(tmp_path, segment_bytes=4096, key=key)
    assert reopened.opened_repair is None
    assert [h for _, _, h in reopened if h is not None] == [hashes[i] for i in sorted(hashes)]
    assert reopened.read(60) == b"still appendable"


def test_an_oversized_leaf_is_refused(open_store: Open, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(SegmentError, match="exceeds"):
        store.append(b"x" * (16 * 1024 * 1024 + 1))
    assert len(store) == 0


@pytest.mark.parametrize(
    "content",
    [KEY, KEY.hex().encode() + b"\n", base64.b64encode(KEY) + b"\n"],
    ids=["raw", "hex", "base64"],
)
def test_keys_load_raw_hex_or_base64(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    assert load_key(path) == KEY


@pytest.mark.parametrize("content", [b"short", b"zz" * 32, b""])
def test_a_bad_key_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(SegmentError, match="not a 32-byte key"):
        load_key(path)
    with pytest.raises(SegmentError, match="cannot read"):
        load_key(tmp_path / "absent")


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_cut_anywhere_keeps_exactly_the_whole_records_before_it(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    directory = tmp_path_factory.mktemp("cut")
    written = fill(directory, 6)
    path = directory / "seg-000000000000.log"
    raw = path.read_bytes()
    cut = data.draw(st.integers(0, len(raw)))
    path.write_bytes(raw[:cut])
    frame = len(raw) // 6  # the test leaves are all one size
    with SegmentStore(directory) as store:
        kept = cut // frame
        assert [store.read(i) for i in range(len(store))] == written[:kept]
        assert (store.opened_repair is None) == (cut % frame == 0)
