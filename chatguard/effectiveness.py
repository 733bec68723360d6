"""Which banners change behaviour: variants, outcomes and their statistics.

What it owns, all pure:

* ``assign_variant``: a user's variant of a banner, from a hash of the user
  id and the banner id — the same on every replica and every day, so an A/B
  test compares people, not messages.
* ``classify``: the outcome of one impression from what its viewer did next
  (see ``OUTCOMES``).
* ``wilson`` and ``difference``: 95% confidence intervals for a rate and for
  the difference between two rates (Newcombe's hybrid score method).
* ``summarise``: impression and outcome events in, a ``BannerReport`` out.
  ``report(paths, since)`` reads the event files (``outcome_log``) and
  summarises them; the console's analytics page calls it.

Invariants: no I/O except in ``report``; no clock reads (times are passed
in); an outcome is decided once per impression.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Z95 = 1.959964
#: Similarity above which a message after a cancelled prompt counts as an edit.
EDIT_SIMILARITY = 0.5

#: What each kind of impression can end in; the first is decided by the
#: viewer's answer or later acts, the last when the window closes quietly.
OUTCOMES: Mapping[str, tuple[str, ...]] = {
    "prompt": ("sent_anyway", "edited", "cancelled", "timed_out"),
    "warning": ("reported", "left", "kept_talking", "no_reply"),
    "deterrence": ("reoffended", "desisted"),
    "notice": (),
}


_ANSWERS = ("send", "cancel", "timeout")


def assign_variant(user: str, banner_id: str, variants: Sequence[tuple[str, float]]) -> str:
    """The variant ``user`` sees of ``banner_id``: deterministic, weighted."""
    if not variants:
        return "default"
    h = hashlib.sha256(f"{user}\x00{banner_id}".encode()).digest()
    point = int.from_bytes(h[:8], "big") / 2**64 * sum(w for _, w in variants)
    for variant, weight in variants:
        if point < weight:
            return variant
        point -= weight
    return variants[-1][0]


@dataclass(frozen=True, slots=True)
class Impression:
    """A banner someone saw. ``kind``: prompt, warning, deterrence or notice."""

    id: str
    banner: str
    variant: str
    audience: str
    trigger: str
    user: str
    at: float
    kind: str
    conversation: str = ""
    risky: tuple[str, ...] = ()  # for prompts: the text that was held, and its risky spans


@dataclass(frozen=True, slots=True)
class Observation:
    """Something the viewer did after an impression.

    ``what``: ``send`` / ``cancel`` / ``timeout`` (answers to a prompt),
    ``message`` (they wrote in the conversation), ``report``, ``left``,
    ``signals`` (their message raised risk signals).
    """

    what: str
    at: float
    conversation: str = ""
    text: str = ""


def is_edit(held: str, risky: Sequence[str], text: str) -> bool:
    """``text`` is a close variant of ``held`` without any of its risky spans."""
    if any(span and span in text for span in risky):
        return False
    return difflib.SequenceMatcher(None, held, text).ratio() >= EDIT_SIMILARITY


def classify(
    impression: Impression, seen: Sequence[Observation], window_closed: bool
) -> str | None:
    """The outcome, or None while it is still open."""
    kind = impression.kind
    if kind == "prompt":
        index = next((i for i, o in enumerate(seen) if o.what in _ANSWERS), None)
        if index is None:
            return "timed_out" if window_closed else None
        answer = seen[index]
        if answer.what == "send":
            return "sent_anyway"
        if answer.what == "timeout":
            return "timed_out"
        after = [o for o in seen[index + 1 :] if o.what == "message"]
        if after:
            held, *risky = impression.risky or ("",)
            return "edited" if is_edit(held, risky, after[0].text) else "cancelled"
        return "cancelled" if window_closed else None
    if kind == "warning":
        whats = {o.what for o in seen}
        if "report" in whats:
            return "reported"
        if "left" in whats:
            return "left"
        if not window_closed:
            return None
        return "kept_talking" if "message" in whats else "no_reply"
    if kind == "deterrence":
        if any(o.what == "signals" for o in seen):
            return "reoffended"
        return "desisted" if window_closed else None
    return None


# -- statistics ---------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p2 - p1 with Newcombe's hybrid score 95% interval (method 10)."""
    if n1 == 0 or n2 == 0:
        return (0.0, -1.0, 1.0)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return (d, max(-1.0, lo), min(1.0, hi))


# -- the report ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    outcome: str
    count: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class VariantFigures:
    banner: str
    variant: str
    kind: str
    impressions: int
    decided: int
    rates: tuple[Rate, ...]


@dataclass(frozen=True, slots=True)
class Difference:
    banner: str
    outcome: str
    baseline: str
    variant: str
    difference: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class BannerReport:
    since: float | None
    variants: tuple[VariantFigures, ...]
    differences: tuple[Difference, ...] = ()
    skipped: int = 0  # malformed lines

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "skipped_lines": self.skipped,
            "banners": [
                {
                    "banner": v.banner,
                    "variant": v.variant,
                    "kind": v.kind,
                    "impressions": v.impressions,
                    "decided": v.decided,
                    "outcomes": {
                        r.outcome: {
                            "count": r.count,
                            "rate": round(r.rate, 4),
                            "ci95": [round(r.low, 4), round(r.high, 4)],
                        }
                        for r in v.rates
                    },
                }
                for v in self.variants
            ],
            "differences": [
                {
                    "banner": d.banner,
                    "outcome": d.outcome,
                    "baseline": d.baseline,
                    "variant": d.variant,
                    "difference": round(d.difference, 4),
                    "ci95": [round(d.low, 4), round(d.high, 4)],
                }
                for d in self.differences
            ],
        }

    def to_text(self) -> str:
        lines = []
        for v in self.variants:
            lines.append(
                f"{v.banner} [{v.variant}] ({v.kind}): {v.impressions} impressions, "
                f"{v.decided} with an outcome"
            )
            for r in v.rates:
                lines.append(
                    f"  {r.outcome:<13} {r.count:>6}  {r.rate:6.1%}  "
                    f"(95% CI {r.low:.1%} to {r.high:.1%})"
                )
        for d in self.differences:
            lines.append(
                f"{d.banner} {d.outcome}: {d.variant} - {d.baseline} = {d.difference:+.1%} "
                f"(95% CI {d.low:+.1%} to {d.high:+.1%})"
            )
        return "\n".join(lines) if lines else "no impressions recorded"


@dataclass
class _Tally:
    kind: str = "notice"
    impressions: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def summarise(
    events: Iterable[Mapping[str, Any]], since: float | None = None, skipped: int = 0
) -> BannerReport:
    """Figures per banner and variant. Rates are over impressions with an outcome."""
    of: dict[str, tuple[str, str]] = {}
    tallies: dict[tuple[str, str], _Tally] = {}
    outcomes: list[dict[str, str]] = []
    for e in events:
        try:
            at = float(e.get("at", 0))
            if since is not None and at < since:
                continue
            if e.get("event") == "impression":
                key = (str(e["banner"]), str(e["variant"]))
                tally = tallies.setdefault(key, _Tally(kind=str(e.get("kind", "notice"))))
                tally.impressions += 1
                of[str(e["id"])] = key
            elif e.get("event") == "outcome":
                outcomes.append({"id": str(e["id"]), "outcome": str(e["outcome"])})
        except (KeyError, TypeError, ValueError):
            skipped += 1
    for e in outcomes:
        found = of.get(e["id"])  # an outcome without its impression in range is skipped
        if found is not None:
            counts = tallies[found].outcomes
            counts[e["outcome"]] = counts.get(e["outcome"], 0) + 1
    variants = []
    for (banner, variant), t in sorted(tallies.items()):
        decided = sum(t.outcomes.values())
        names = OUTCOMES.get(t.kind, ()) or tuple(sorted(t.outcomes))
        rates = tuple(
            Rate(
                o,
                t.outcomes.get(o, 0),
                t.outcomes.get(o, 0) / decided if decided else 0.0,
                *wilson(t.outcomes.get(o, 0), decided),
            )
            for o in names
        )
        variants.append(VariantFigures(banner, variant, t.kind, t.impressions, decided, rates))
    return BannerReport(since, tuple(variants), _differences(variants), skipped)


def _differences(variants: Sequence[VariantFigures]) -> tuple[Difference, ...]:
    out: list[Difference] = []
    by_banner: dict[str, list[VariantFigures]] = {}
    for v in variants:
        by_banner.setdefault(v.banner, []).append(v)
    for banner, vs in sorted(by_banner.items()):
        if len(vs) < 2:
            continue
        base = vs[0]
        for other in vs[1:]:
            for rate in base.rates:
                k2 = next((r.count for r in other.rates if r.outcome == rate.outcome), 0)
                d, lo, hi = difference(rate.count, base.decided, k2, other.decided)
                out.append(Difference(banner, rate.outcome, base.variant, other.variant, d, lo, hi))
    return tuple(out)


def report(paths: Iterable[Path], since: float | None = None) -> BannerReport:
    """Read impression and outcome event files and summarise them."""
    from .outcome_log import read_events

    events, skipped = read_events(paths)
    return summarise(events, since, skipped)
