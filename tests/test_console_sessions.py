"""Console sessions: random ids, CSRF tokens, expiry, a bounded table."""

from __future__ import annotations

from chatguard.console.sessions import SessionTable, csrf_ok


def test_open_get_expire_close() -> None:
    table = SessionTable(ttl=100, max_sessions=10)
    s = table.open("mia", now=0)
    assert table.get(s.id, 50) == s
    assert table.get(s.id, 100) is None  # expired
    s2 = table.open("mia", now=0)
    table.close(s2.id)
    assert table.get(s2.id, 1) is None
    assert table.get(None, 1) is None
    assert table.get("guess", 1) is None


def test_ids_and_csrf_tokens_are_random_and_distinct() -> None:
    table = SessionTable(ttl=100, max_sessions=100)
    sessions = [table.open("mia", 0) for _ in range(50)]
    values = {s.id for s in sessions} | {s.csrf for s in sessions}
    assert len(values) == 100
    assert all(len(v) >= 40 for v in values)


def test_the_table_is_bounded_oldest_first() -> None:
    table = SessionTable(ttl=100, max_sessions=3)
    first = table.open("a", 0)
    for _ in range(3):
        table.open("b", 0)
    assert len(table) == 3
    assert table.get(first.id, 1) is None


def test_csrf_check() -> None:
    s = SessionTable(ttl=100, max_sessions=3).open("a", 0)
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, None)
    assert not csrf_ok(s, "")
    assert not csrf_ok(s, s.csrf[:-1])
