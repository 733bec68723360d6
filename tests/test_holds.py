"""HoldBook: the messages one session was asked to confirm (pure, time passed in)."""

from __future__ import annotations

import re

import pytest

from chatguard.events import ChatEvent, EventKind, Side
from chatguard.holds import CHOICES, DEFAULT_LIMIT, HoldBook

TIMEOUT = 120.0


def event(n: int) -> ChatEvent:
    raw = f'{{"type":"message","room":"lobby","text":"msg {n}"}}'
    return ChatEvent(EventKind.MESSAGE, Side.CLIENT, raw, "amy", "lobby", (), f"msg {n}")


def fill(book: HoldBook, count: int, *, start: float = 0.0, step: float = 1.0) -> list[str]:
    """Hold ``count`` messages, one per ``step`` seconds; their ids in order."""
    ids = []
    for n in range(count):
        held, _ = book.hold(event(n).raw, event(n), "pi_share_confirm", start + n * step, TIMEOUT)
        ids.append(held.id)
    return ids


def latest_id(book: HoldBook) -> str | None:
    latest = book.latest()
    return None if latest is None else latest.id


def test_a_hold_keeps_the_exact_frame_event_banner_and_deadline() -> None:
    book = HoldBook()
    ev = event(1)
    held, evicted = book.hold(ev.raw, ev, "pi_share_confirm", 1000.0, 30.0)
    assert evicted is None
    assert (held.frame, held.event, held.banner_id, held.expires) == (
        ev.raw,
        ev,
        "pi_share_confirm",
        1030.0,
    )
    assert len(book) == 1
    assert CHOICES == ("send", "cancel")


def test_ids_are_opaque_and_unique() -> None:
    book = HoldBook(limit=500)
    ids = fill(book, 500)
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"h-[0-9a-f]{12}", i) for i in ids)


@pytest.mark.parametrize(
    ("limit", "held", "evicted_positions", "left"),
    [
        (3, 3, [], 3),
        (3, 4, [0], 3),
        (3, 6, [0, 1, 2], 3),
        (1, 3, [0, 1], 1),
        (DEFAULT_LIMIT, DEFAULT_LIMIT + 1, [0], DEFAULT_LIMIT),
    ],
)
def test_the_book_is_bounded_and_evicts_the_oldest_first(
    limit: int, held: int, evicted_positions: list[int], left: int
) -> None:
    book = HoldBook(limit=limit)
    ids: list[str] = []
    evicted: list[str] = []
    for n in range(held):
        h, gone = book.hold(event(n).raw, event(n), "b", float(n), TIMEOUT)
        ids.append(h.id)
        if gone is not None:
            evicted.append(gone.id)
    assert evicted == [ids[i] for i in evicted_positions]
    assert len(book) == left
    # What is left is the newest ones, in order; the evicted ones are gone.
    assert all(book.release(i) is None for i in evicted)
    assert [book.release(i) is not None for i in ids[-left:]] == [True] * left


def test_release_takes_a_hold_out_once() -> None:
    book = HoldBook()
    first, second = fill(book, 2)
    released = book.release(first)
    assert released is not None
    assert released.id == first
    assert book.release(first) is None
    assert book.release("h-000000000000") is None
    assert len(book) == 1
    assert latest_id(book) == second


def test_latest_is_the_most_recent_hold_still_waiting() -> None:
    book = HoldBook()
    assert latest_id(book) is None
    a, b, c = fill(book, 3)
    assert latest_id(book) == c
    book.release(c)
    assert latest_id(book) == b
    book.release(a)
    assert latest_id(book) == b
    book.release(b)
    assert latest_id(book) is None


@pytest.mark.parametrize(
    ("now", "expired_positions"),
    [
        (0.0, []),
        (TIMEOUT - 0.001, []),
        (TIMEOUT, [0]),  # a deadline is inclusive: due at exactly its time
        (TIMEOUT + 1.5, [0, 1]),
        (TIMEOUT + 100.0, [0, 1, 2]),
    ],
)
def test_expired_takes_out_every_hold_whose_time_is_up(
    now: float, expired_positions: list[int]
) -> None:
    book = HoldBook()
    ids = fill(book, 3, start=0.0, step=1.0)
    due = book.expired(now)
    assert [h.id for h in due] == [ids[i] for i in expired_positions]
    assert len(book) == 3 - len(due)
    assert book.expired(now) == []  # taken out, not reported twice
    for held_id in ids:
        assert (book.release(held_id) is None) == (held_id in {h.id for h in due})
