"""Transcripts: time order, one line per message, flagged spans marked, HTML escaped."""

from __future__ import annotations

from typing import Any

from chatguard.evidence.transcript import lines_of, render_html, render_text


def entry(t: str, sender: str, text: str, sha: str) -> dict[str, Any]:
    return {
        "date_time": t,
        "sender": sender,
        "recipients": ["amy"],
        "room_name": None,
        "text": text,
        "raw_sha256": sha,
    }


CAPTURE = {
    "kind": "capture",
    "incident_date_time": "2026-01-01T10:00:03Z",
    "room_name": None,
    "context_before": [
        entry("2026-01-01T10:00:01Z", "bob", "hi <amy>", "a"),
        entry("2026-01-01T10:00:02Z", "amy", "hey", "b"),
    ],
    "message": {
        "sender": "bob",
        "recipients": ["amy"],
        "text": "add me on snap ok",
        "raw_sha256": "c",
        "matched_spans": [
            {"rule_id": "r.move", "start": 0, "end": 14},
            {"rule_id": "r.snap", "start": 10, "end": 14},
        ],
    },
}
CONTEXT = {
    "kind": "context",
    "context_after": [entry("2026-01-01T10:00:04Z", "amy", "why", "d")],
}
# A second capture repeating an earlier message: it appears once.
AGAIN = {**CAPTURE, "context_before": [CAPTURE["context_before"][1]]}


def test_lines_are_in_time_order_once_each() -> None:
    lines = lines_of([CONTEXT, CAPTURE, AGAIN])
    assert [line["text"] for line in lines] == ["hi <amy>", "hey", "add me on snap ok", "why"]
    assert [line["captured"] for line in lines] == [False, False, True, False]


def test_text_marks_the_captured_message_and_each_rule_span() -> None:
    text = render_text("Case 1", lines_of([CAPTURE, CONTEXT]))
    assert text.startswith("Case 1\n======\n")
    [captured] = [line for line in text.splitlines() if line.startswith(">> ")]
    assert captured == (
        ">> 2026-01-01T10:00:03Z  bob -> amy: [[add me on ]]{r.move}[[snap]]{r.move, r.snap} ok"
    )
    assert "   2026-01-01T10:00:04Z  amy -> amy: why" in text


def test_html_escapes_text_and_marks_spans() -> None:
    page = render_html("Case <1>", lines_of([CAPTURE]))
    assert "<title>Case &lt;1&gt;</title>" in page
    assert "hi &lt;amy&gt;" in page
    assert "<amy>" not in page
    assert '<mark data-rules="r.move, r.snap">snap</mark>' in page
    assert page.count('class="captured"') == 1


def test_a_moderator_capture_adds_its_window_and_no_empty_line() -> None:
    window = {**CAPTURE, "message": None, "trigger": "moderator"}
    lines = lines_of([window])
    assert [line["text"] for line in lines] == ["hi <amy>", "hey"]
    assert not any(line["captured"] for line in lines)
