"""Confirming a regex that begins with lookaheads by searching for each part.

A pack's compound rules read "A somewhere, B somewhere, then C":
``^(?=.*\\b(?:pics?|videos?)\\b)(?=.*\\b(?:pay|venmo)\\b).*?\\b(?:or|unless)\\b``.
The `regex` module confirms one by trying ``.*A`` from the start of the
message, backing off one character at a time; a plain search for ``A`` gives
the same answer sooner. And the order of the parts matters: the prefilter
found the candidate by one part (``prefilter.probed_look``), which it then
almost surely has, while most candidates lack some other part. Testing the
other parts first ends most false candidates after one search; on the
evaluation set's messages confirmations of this kind took a third less time.

``LeadingLooks.spans(text, timeout)`` gives what ``finditer`` on the whole
regex gives (the spans of its non-empty matches) on any text without a
newline (``applies``), because:

* ``^`` anchors the whole regex at the start (no MULTILINE), so it matches
  at most once, at 0, with the span of what follows the lookaheads;
* ``(?=.*A)`` at 0 holds exactly when ``A`` matches somewhere: ``.`` matches
  every character but the newline (no DOTALL); a lookahead that does not
  begin with ``.*`` is matched at 0, as written;
* lookarounds are atomic: each part is decided on its own;
* a rest that begins ``.*?`` tries its remainder at 0, 1, 2... as a search
  does, and ends where the first match of the remainder ends.

Invariants: the same spans as the whole regex on every text it applies to
(``tests/test_policy_lookahead_confirm.py`` compares both on every message
of the evaluation set and on made-up texts); each search runs under the
caller's timeout, so one confirmation is bounded by the parts' count times
it (a caller that skips the timeout because the whole regex's work bound
allows it skips it for the parts too: each part does work the whole regex
does, once). A regex whose pieces do not stand alone is not read apart.
Pure: no I/O, no state but the compiled parts.
"""

from __future__ import annotations

from typing import Any

import regex  # type: ignore[import-untyped, unused-ignore]

from chatguard.policy.regex_tree import FLAGS, Alt, RegexRefused, leading_looks, min_width, parse

# (negative, search rather than match at 0, the compiled part)
_Part = tuple[bool, bool, Any]


def _after_run(source: str, runs: tuple[str, ...]) -> str | None:
    """What follows a leading run of any characters (one of ``runs``) that
    a search can stand in for; None when there is none. Not for "(?=.*a|b)",
    whose "b" must be at 0; nor ".*+" or ".*?+" (possessive), which do not
    back off: those are matched as written."""
    if isinstance(parse(source), Alt):
        return None
    for run in runs:
        if source.startswith(run) and not source.startswith(run + "+"):
            return source[len(run) :]
    return None


def _part(negative: bool, body: str) -> _Part:
    after = _after_run(body, (".*?", ".*"))
    if after is not None:
        return negative, True, regex.compile(after, FLAGS)
    return negative, False, regex.compile(body, FLAGS)


class LeadingLooks:
    """A regex led by lookaheads, read as its parts (see the module docstring)."""

    __slots__ = ("_lazy", "_parts", "_rest")

    def __init__(self, parts: list[_Part], rest: str) -> None:
        self._parts = parts
        # A rest that begins ".*?" matches at 0 up to the end of the first
        # place its remainder matches: what a search for the remainder finds.
        after = _after_run(rest, (".*?",))
        self._lazy = after is not None
        self._rest = regex.compile(rest if after is None else after, FLAGS)

    @classmethod
    def build(cls, source: str, probed: int | None = None) -> LeadingLooks | None:
        """The parts of ``source``, or None when it is not led by lookaheads
        or what follows them may match nothing.
        ``probed``: which positive lookahead the prefilter probes (counted
        among the positive ones), tested after the others."""
        split = leading_looks(source)
        if split is None:
            return None
        looks, rest = split
        try:
            if min_width(parse(rest)) == 0:
                # After an empty match at 0 ``finditer`` tries again at 0 for
                # a longer one ("^(?=.*a).*?x?" finds "p" in "pa"): not read apart.
                return None
            positive = [_part(False, body) for negative, body in looks if not negative]
            negative = [_part(True, body) for negative, body in looks if negative]
            if probed is not None and 0 <= probed < len(positive):
                positive.append(positive.pop(probed))
            return cls([*positive, *negative], rest)
        except (RegexRefused, regex.error):
            return None  # a piece that does not stand alone: the whole regex runs

    @staticmethod
    def applies(text: str) -> bool:
        return "\n" not in text

    def spans(self, text: str, timeout: float | None) -> list[tuple[int, int]]:
        """The whole regex's non-empty match spans in ``text`` (``applies``
        must hold). A part that runs past ``timeout`` raises ``TimeoutError``."""
        for negative, search, part in self._parts:
            if search:
                found = part.search(text, timeout=timeout) is not None
            else:
                found = part.match(text, timeout=timeout) is not None
            if found is negative:
                return []
        if self._lazy:
            m = self._rest.search(text, timeout=timeout)
            return [(0, m.end())] if m is not None and m.end() > 0 else []
        m = self._rest.match(text, timeout=timeout)
        return [m.span()] if m is not None and m.end() > m.start() else []
