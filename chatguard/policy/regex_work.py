"""How much work a rule regex can make the `regex` module do on a text.

This module owns ``search_steps``: an upper bound, read from a regex's
``regex_tree`` tree, on the steps a backtracking matcher takes to find every
match of the regex in a text of ``n`` characters; and ``longest_text``, the
longest text on which that bound stays within a budget. The matcher
(``matcher.py``) runs a confirmation without the `regex` module's timeout
only when the bound shows it cannot run long: the timeout reads the
process's CPU clock at least twice a call, which costs more than the whole
match of a short chat message, and on such a text the bound already gives
what the timeout would.

The bound. A *step* is one test of one tree node at one position (a
character against a class, an assertion, entering a lookaround). For a node
tried at a fixed position, ``(cost, ways)``: the steps to try every way it
can match there, and the most ways it can succeed, each of which runs the
rest of the regex once:

* a class or an assertion: ``(1, 1)``;
* a sequence ``a b``: ``cost(a) + ways(a) * cost(b)``, ``ways(a) * ways(b)``;
* an alternation: the sums of its branches' (branches that are plain
  strings succeed together only when one is a prefix of another: their
  ways count at most the longest such chain);
* a lookaround: its body tried to the end, once; it succeeds at most once
  (the `regex` module never backtracks into it);
* a repeat: every count of iterations from ``lo`` up to ``hi``, and up to
  ``n`` when unbounded (fewer when each iteration takes a character).

A search tries the regex at each of the ``n + 1`` positions (only the first
gets past a leading ``^`` or ``\\A``), so it takes at most ``(n + 1) *
(cost + ways)`` steps; ``finditer`` tries each position at most once too.
The bound is loose (a real search of a chat message takes a tiny part of
it) but never low: the engine's backtracking explores at most the ways
counted here.

Invariants: pure and deterministic; the bound never decreases as ``n``
grows; a tree ``parse`` refuses (fuzzy matching, backreferences) has no
bound here and is always run with the timeout. Never: compile or run a
regex, or read a clock.
"""

from __future__ import annotations

from collections import Counter

from chatguard.policy.regex_tree import Alt, Assert, CharSet, Look, Node, Repeat, Seq, min_width

#: Bounds are clamped here: past it a text is long enough to need the
#: timeout whatever the regex, and Python integers stay small.
CAP = 1 << 62

_Cost = tuple[int, int]  # (steps to try every way at one position, most ways to succeed)
#: What does not depend on the text's length, per node (by id: valid while
#: the tree lives): an alternation's longest chain of plain strings and which
#: of its branches are not plain strings; a repeat's body's shortest width.
Memo = dict[int, tuple[int, tuple[bool, ...]] | int]
_ANCHORS = (Assert("^"), Assert("\\A"))


def search_steps(node: Node, n: int, memo: Memo | None = None) -> int:
    """An upper bound on the steps to find every match of ``node`` in a text
    of ``n`` characters (``CAP`` at most). ``memo``, kept by the caller with
    the tree, saves reading the tree's alternations again for another ``n``."""
    return _search(node, n, {} if memo is None else memo)


def longest_text(node: Node, budget: int, limit: int) -> int:
    """The longest text, up to ``limit`` characters, on which ``node``'s
    search takes at most ``budget`` steps; -1 when not even the empty text."""
    memo: Memo = {}
    if _search(node, 0, memo) > budget:
        return -1
    lo, hi = 0, limit  # lo is within the budget; find the last n that is
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _search(node, mid, memo) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _search(node: Node, n: int, memo: Memo) -> int:
    cost, ways = _cost(node, n, memo)
    if isinstance(node, Seq) and node.items[:1] and node.items[0] in _ANCHORS:
        return min(n + 1 + cost + ways, CAP)  # other positions fail at the anchor
    return min((n + 1) * (cost + ways), CAP)


def _cost(node: Node, n: int, memo: Memo) -> _Cost:
    match node:
        case CharSet() | Assert():
            return 1, 1
        case Look(_, _, body):
            cost, ways = _cost(body, n, memo)
            return min(cost + ways, CAP), 1
        case Seq(items):
            cost, ways = 0, 1
            for item in items:
                c, w = _cost(item, n, memo)
                cost, ways = min(cost + ways * c, CAP), min(ways * w, CAP)
            return cost, ways
        case Alt(branches):
            known = memo.get(id(node))
            if not isinstance(known, tuple):
                strings = [_string(b) for b in branches]
                plain = [s for s in strings if s is not None]
                known = (_longest_chain(plain) if plain else 0, tuple(s is None for s in strings))
                memo[id(node)] = known
            cost, ways = 0, known[0]
            for branch, other in zip(branches, known[1], strict=True):
                c, w = _cost(branch, n, memo)
                cost = min(cost + c, CAP)
                if other:
                    ways = min(ways + w, CAP)
            return cost, ways
        case Repeat(body, lo, hi):
            width = memo.get(id(node))
            if not isinstance(width, int):
                width = memo[id(node)] = min_width(body)
            return _repeat(_cost(body, n, memo), lo, hi, width, n)


def _repeat(body: _Cost, lo: int, hi: int | None, width: int, n: int) -> _Cost:
    """Every count of iterations from ``lo`` to the most the text allows.

    With ``top`` the most iterations that can succeed: ``f(top) = (c, 1)``
    (one more iteration is tried and fails; stopping is a way when ``top >=
    lo``), and ``f(j) = body ∘ f(j + 1)`` plus, from ``lo`` on, the way that
    stops after ``j``. Written out for a body with at most one way (a class:
    most repeats), iterated and clamped otherwise."""
    c, w = body
    top = n + 1 if hi is None else hi
    if width:
        top = min(top, n // width)  # each iteration takes ``width`` characters
    if w <= 1:
        ways = (top - lo + 1 if top >= lo else 0) if w else int(lo == 0)
        return min((top + 1) * c, CAP), ways
    cost, ways = c, int(top >= lo)
    for j in range(top - 1, -1, -1):
        cost, ways = min(c + w * cost, CAP), min(w * ways + (j >= lo), CAP)
        if cost == CAP:
            return CAP, CAP
    return cost, ways


def _string(node: Node) -> str | None:
    """The one string a node matches, when it is a plain string."""
    match node:
        case CharSet(lower, upper, _) if len(upper) == 1 and upper[0][0] == upper[0][1]:
            return chr(upper[0][0]) if lower == upper else None
        case Seq(items):
            parts = [_string(item) for item in items]
            return None if any(p is None for p in parts) else "".join(p or "" for p in parts)
    return None


def _longest_chain(strings: list[str]) -> int:
    """Most of ``strings`` (counted with repeats) that can all match at one
    position: each a prefix of the longest of them."""
    counts = Counter(strings)
    return max(sum(counts.get(s[:i], 0) for i in range(len(s) + 1)) for s in counts)
