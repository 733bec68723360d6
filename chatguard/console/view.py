"""Pure helpers that turn case data into what a page shows.

What it owns: highlighting matched spans in the original text (as segments,
so templates escape the text themselves), age formatting, and filter
parsing shared by the API and the pages.

Invariants: pure; never builds HTML from text, so chat content cannot inject
markup; a filter value that is not understood is a ``FilterError`` naming the
parameter, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

STATUSES = ("new", "in_review", "actioned", "reported", "closed")
SEVERITIES = ("low", "medium", "high", "critical")
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_NOTE = 4000


class FilterError(ValueError):
    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Filters:
    status: str | None = None
    severity: str | None = None
    category: str | None = None
    assignee: str | None = None
    older_than: float | None = None  # seconds of age
    limit: int = DEFAULT_LIMIT
    escalated_to_lead: bool | None = None

    def query(self) -> dict[str, str]:
        out = {
            k: str(v)
            for k, v in (
                ("status", self.status),
                ("severity", self.severity),
                ("category", self.category),
                ("assignee", self.assignee),
                ("older_than", self.older_than),
            )
            if v is not None
        }
        return out


def parse_filters(query: Mapping[str, str]) -> Filters:
    known = {"status", "severity", "category", "assignee", "older_than", "limit", "lead"}
    for key in query:
        if key not in known:
            raise FilterError(key, f"unknown filter (known: {', '.join(sorted(known))})")

    def text(name: str) -> str | None:
        value = query.get(name, "").strip()
        return value or None

    status, severity = text("status"), text("severity")
    if status is not None and status not in STATUSES:
        raise FilterError("status", f"must be one of {', '.join(STATUSES)}")
    if severity is not None and severity not in SEVERITIES:
        raise FilterError("severity", f"must be one of {', '.join(SEVERITIES)}")
    older_than: float | None = None
    if (raw := text("older_than")) is not None:
        try:
            older_than = float(raw)
        except ValueError:
            raise FilterError("older_than", "must be a number of seconds") from None
        if not 0 <= older_than < 10 * 365 * 86400:
            raise FilterError("older_than", "must be a non-negative number of seconds")
    limit = DEFAULT_LIMIT
    if (raw := text("limit")) is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise FilterError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw)
    lead: bool | None = None
    if (raw := text("lead")) is not None:
        if raw not in ("true", "false"):
            raise FilterError("lead", "must be true or false")
        lead = raw == "true"
    return Filters(status, severity, text("category"), text("assignee"), older_than, limit, lead)


def highlight(text: str, spans: Iterable[tuple[int, int, str]]) -> list[tuple[str, str | None]]:
    """``text`` cut into (segment, rule id or None) pieces; overlapping spans merge."""
    clipped = ((max(0, s), min(len(text), e), rule) for s, e, rule in spans)
    ordered = sorted((s, e, rule) for s, e, rule in clipped if e > s)
    pieces: list[tuple[str, str | None]] = []
    at = 0
    merged: list[tuple[int, int, str]] = []
    for start, end, rule in ordered:
        if merged and start < merged[-1][1]:
            s0, e0, r0 = merged[-1]
            rules = r0.split(", ")
            merged[-1] = (s0, max(e0, end), r0 if rule in rules else f"{r0}, {rule}")
        else:
            merged.append((start, end, rule))
    for start, end, rule in merged:
        if start > at:
            pieces.append((text[at:start], None))
        pieces.append((text[start:end], rule))
        at = end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def age(seconds: float) -> str:
    """A short human age: 45s, 12m, 3h, 2d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def parse_duration(raw: object) -> float | None:
    """A duration in seconds from JSON or a form: None/""/"permanent" = no end."""
    if raw is None or raw == "" or raw == "permanent":
        return None
    if isinstance(raw, bool):
        raise FilterError("duration", "must be a number of seconds or null")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FilterError("duration", "must be a number of seconds or null") from None
    if not 0 < value <= 100 * 365 * 86400:
        raise FilterError("duration", "must be a positive number of seconds")
    return value
