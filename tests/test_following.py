"""Notices that wait for the message they are about."""

from __future__ import annotations

from chatguard.events import Notice
from chatguard.following import Following, Seen, SessionSeen, digest, message_key

KEY = message_key("dm:amy:bob", "bob", "add me on snap")


def test_the_digest_ignores_spacing_only() -> None:
    assert digest("add  me on\nsnap ") == digest("add me on snap")
    assert digest("add me on snap") != digest("add me on kik")


def test_a_notice_waits_for_its_message_then_follows_it() -> None:
    f = Following()
    notice = Notice("banner", "careful")
    assert f.park(KEY, notice, now=10.0, wait=2.0) == []
    assert f.passed(message_key("dm:amy:bob", "bob", "other"), 10.5, 2.0) == []
    assert f.passed(KEY, 11.0, 2.0) == [notice]
    assert len(f) == 0


def test_a_notice_for_a_message_already_seen_goes_at_once() -> None:
    f = Following()
    assert f.passed(KEY, 10.0, 2.0) == []
    notice = Notice("banner", "careful")
    assert f.park(KEY, notice, 11.0, 2.0) == [notice]
    # Seen messages are forgotten after the wait.
    f.passed(message_key("x", "y", "z"), 20.0, 2.0)
    assert f.park(KEY, notice, 20.0, 2.0) == []


def test_a_notice_whose_message_never_comes_is_sent_at_its_deadline() -> None:
    f = Following()
    notice = Notice("banner", "careful")
    f.park(KEY, notice, 10.0, 2.0)
    assert f.due(11.9) == []
    assert f.due(12.0) == [notice]
    assert f.due(13.0) == []


def test_waiting_is_bounded_and_the_oldest_is_sent_not_dropped() -> None:
    f = Following(limit=2)
    notices = [Notice("banner", str(i)) for i in range(3)]
    assert f.park(("c", "s", "1"), notices[0], 0, 5) == []
    assert f.park(("c", "s", "2"), notices[1], 0, 5) == []
    assert f.park(("c", "s", "3"), notices[2], 0, 5) == [notices[0]]
    assert len(f) == 2


def test_report_context_is_the_conversations_recent_messages() -> None:
    seen = SessionSeen()
    for i in range(5):
        seen.recent.append(Seen(float(i), "room:a" if i % 2 else "room:b", "u", f"m{i}"))
    assert [m.text for m in seen.context("room:a", 10)] == ["m1", "m3"]
    assert [m.text for m in seen.context("room:b", 2)] == ["m2", "m4"]
