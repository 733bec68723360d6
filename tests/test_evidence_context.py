"""ContextBuffer: bounded windows per conversation, LRU, de-duplication, follow-ups."""

from __future__ import annotations

from typing import Any

from chatguard.evidence.context import ContextBuffer


def msg(text: str, origin: str = "client", sender: str = "bob", mid: str | None = None) -> Any:
    return {"origin": origin, "sender": sender, "text": text, "message_id": mid}


def texts(entries: list[Any]) -> list[str]:
    return [e["text"] for e in entries]


def test_a_window_keeps_the_newest_and_the_last_before_messages_in_order() -> None:
    buf = ContextBuffer(before=3)
    for i in range(6):
        buf.add("c", msg(f"m{i}"))
    assert texts(buf.recent("c", 10)) == ["m2", "m3", "m4", "m5"]
    assert texts(buf.recent("c", 2)) == ["m4", "m5"]
    assert buf.recent("c", 0) == []
    assert buf.recent("unknown", 3) == []


def test_the_least_recently_active_conversation_is_forgotten_first() -> None:
    buf = ContextBuffer(before=1, conversations=2)
    buf.add("a", msg("a1"))
    buf.add("b", msg("b1"))
    buf.add("a", msg("a2"))  # a is now the most recent
    buf.add("c", msg("c1"))
    assert len(buf) == 2
    assert buf.recent("b", 2) == []
    assert texts(buf.recent("a", 2)) == ["a1", "a2"]


def test_an_upstream_copy_of_a_client_message_is_kept_once() -> None:
    buf = ContextBuffer(before=10)
    buf.add("dm", msg("hi amy"))
    buf.add("dm", msg("hi amy", origin="upstream", mid="7"))
    buf.add("dm", msg("hi amy", origin="upstream", mid="7"))  # to a second session
    buf.add("dm", msg("hi amy", origin="upstream", mid="8"))  # said again: a new message
    buf.add("dm", msg("hello", origin="upstream", sender="amy", mid="9"))
    got = buf.recent("dm", 10)
    assert [(e["text"], e["message_id"]) for e in got] == [
        ("hi amy", "7"),
        ("hi amy", "8"),
        ("hello", "9"),
    ]
    assert all(not k.startswith("_") for e in got for k in e)


def test_a_follow_up_completes_after_the_wanted_messages() -> None:
    buf = ContextBuffer(before=5)
    assert buf.follow("cap-1", "c", 2, deadline=100.0) == []
    assert buf.add("other", msg("elsewhere")) == []
    assert buf.add("c", msg("one")) == []
    [done] = buf.add("c", msg("two"))
    assert (done.capture_id, done.complete, texts(done.entries)) == ("cap-1", True, ["one", "two"])
    assert buf.add("c", msg("three")) == []


def test_a_follow_up_expires_with_what_it_has() -> None:
    buf = ContextBuffer()
    buf.follow("cap-1", "c", 5, deadline=100.0)
    buf.add("c", msg("only one"))
    assert buf.expire(99.0) == []
    [done] = buf.expire(100.0)
    assert (done.complete, texts(done.entries)) == (False, ["only one"])
    assert buf.expire(200.0) == []


def test_follow_ups_are_bounded_and_the_oldest_is_pushed_out() -> None:
    buf = ContextBuffer(followups=2)
    assert buf.follow("a", "c", 3, 10.0) == []
    assert buf.follow("b", "c", 3, 10.0) == []
    [pushed] = buf.follow("c", "c", 3, 10.0)
    assert (pushed.capture_id, pushed.complete) == ("a", False)
    assert [f.capture_id for f in buf.drain()] == ["b", "c"]
    assert buf.drain() == []


def test_no_follow_up_for_zero_messages_after() -> None:
    buf = ContextBuffer()
    assert buf.follow("a", "c", 0, 10.0) == []
    assert buf.drain() == []


def test_memory_is_bounded_by_forgetting_the_least_recent_conversations() -> None:
    buf = ContextBuffer(before=10, max_bytes=3000)
    for n in range(10):
        buf.add(f"c{n}", msg("x" * 500))
    assert buf.bytes <= 3000
    assert buf.recent("c0", 1) == []
    assert texts(buf.recent("c9", 1)) == ["x" * 500]
    # One conversation alone is never forgotten for being large.
    buf.add("big", msg("y" * 10_000))
    assert texts(buf.recent("big", 1)) == ["y" * 10_000]
