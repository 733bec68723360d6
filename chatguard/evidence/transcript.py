"""Human-readable transcripts of evidence: plain text and HTML, flagged spans marked.

What it owns: turning the capture and context records of a bundle into one
conversation, in time order, for a reader (moderator, hotline analyst,
investigator). The transcript is a convenience: the signed records are the
evidence, and the bundle manifest says so.

Marking: in text, a flagged span is ``[[span]]`` followed by
``{rule ids}``; in HTML it is ``<mark data-rules="...">``. The captured message
itself is marked ``>>`` (text) or ``class="captured"`` (HTML).

Invariants: pure — records in, strings out; every piece of message text is
HTML-escaped; a message seen in several records appears once.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Line", "lines_of", "render_html", "render_text"]

Line = dict[str, Any]


def lines_of(records: Iterable[Mapping[str, Any]]) -> list[Line]:
    """The messages of these records, de-duplicated, in time order."""
    seen: dict[tuple[str, str], Line] = {}
    for record in records:
        kind = record.get("kind")
        entries: list[tuple[Mapping[str, Any], bool, list[Mapping[str, Any]]]] = []
        if kind == "capture":
            entries += [(e, False, []) for e in record.get("context_before", ())]
            # A moderator's capture has no message of its own (``message`` null).
            if isinstance(record.get("message"), Mapping):
                message = dict(record["message"])
                message["date_time"] = record.get("incident_date_time")
                message["room_name"] = record.get("room_name")
                entries.append((message, True, list(message.get("matched_spans", ()))))
        elif kind == "context":
            entries += [(e, False, []) for e in record.get("context_after", ())]
        for entry, captured, spans in entries:
            key = (str(entry.get("raw_sha256")), str(entry.get("date_time")))
            line = seen.get(key)
            if line is None:
                line = seen[key] = {
                    "date_time": str(entry.get("date_time") or ""),
                    "sender": entry.get("sender"),
                    "recipients": list(entry.get("recipients") or ()),
                    "room": entry.get("room_name"),
                    "text": entry.get("text"),
                    "captured": False,
                    "spans": [],
                }
            if captured:
                line["captured"] = True
                line["spans"] = spans
    return sorted(seen.values(), key=lambda line: line["date_time"])


def _segments(text: str, spans: list[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """Split text into (piece, rule ids covering it) pieces."""
    cuts = {0, len(text)}
    for span in spans:
        start, end = int(span.get("start", 0)), int(span.get("end", 0))
        if 0 <= start < end <= len(text):
            cuts |= {start, end}
    ordered = sorted(cuts)
    pieces = []
    for a, b in itertools.pairwise(ordered):
        rules = sorted(
            {
                str(s.get("rule_id"))
                for s in spans
                if int(s.get("start", 0)) <= a and b <= int(s.get("end", 0))
            }
        )
        pieces.append((text[a:b], rules))
    return pieces


def _who(line: Line) -> str:
    to = f" -> {', '.join(line['recipients'])}" if line["recipients"] else ""
    where = f" in {line['room']}" if line["room"] else ""
    return f"{line['sender']}{to}{where}"


def render_text(title: str, lines: list[Line]) -> str:
    out = [title, "=" * len(title), ""]
    for line in lines:
        text = line["text"] if line["text"] is not None else "(no text)"
        marked = "".join(
            f"[[{piece}]]{{{', '.join(rules)}}}" if rules else piece
            for piece, rules in _segments(text, line["spans"])
        )
        prefix = ">> " if line["captured"] else "   "
        out.append(f"{prefix}{line['date_time']}  {_who(line)}: {marked}")
    out += ["", "Legend: >> a captured message; [[...]]{rule} what the rule matched."]
    return "\n".join(out) + "\n"


def render_html(title: str, lines: list[Line]) -> str:
    rows = []
    for line in lines:
        text = line["text"] if line["text"] is not None else "(no text)"
        body = "".join(
            f'<mark data-rules="{html.escape(", ".join(rules))}">{html.escape(piece)}</mark>'
            if rules
            else html.escape(piece)
            for piece, rules in _segments(text, line["spans"])
        )
        css = ' class="captured"' if line["captured"] else ""
        rows.append(
            f"<tr{css}><td>{html.escape(line['date_time'])}</td>"
            f"<td>{html.escape(_who(line))}</td><td>{body}</td></tr>"
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif}td{padding:2px 8px;vertical-align:top}"
        "tr.captured{background:#fff3cd}mark{background:#f8a5a5}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        "<p>Highlighted rows were captured; marked text is what a rule matched "
        "(hover for the rule). The signed records in this bundle are the evidence; "
        "this page is a reading aid.</p>"
        "<table><tr><th>time (UTC)</th><th>who</th><th>message</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
