"""Rule regexes: the syntax a rule may use, and whether it runs in bounded time.

A rule's ``regex:`` is matched against every message, so one slow pattern
slows every message, and a pattern an attacker can drive into catastrophic
backtracking is a denial of service. This module owns the answer to "may
this regex run in the matcher?":

* ``parse`` (``regex_tree.py``, re-exported here) reads the supported
  subset of `regex`-module syntax (see ``policies/README.md``) into a small
  tree of ``Node`` values. Anything outside the subset (backreferences,
  inline flags, fuzzy constraints, recursion, conditionals ...) is refused
  with a reason.
* ``check_regex`` parses, then refuses what cannot run in bounded time:
  patterns that match the empty string, repetition nested inside unbounded
  repetition (``(a+)+``, ``(\\w+\\s?)+``), alternatives inside unbounded
  repetition that can start with the same character (``(a|aa)+``),
  lookbehind of unbounded width, and finally any pattern that takes more
  than ``slow_limit()`` of CPU time on generated worst-case inputs of
  ``PROBE_CHARS`` characters (see ``dynamic_problem``).

The tree also describes each character class by two sets of code points,
``lower`` (surely matched) and ``upper`` (possibly matched), exact on ASCII
(probed with the `regex` module itself) and conservative elsewhere. The
matcher uses ``upper`` to build prefilters that never miss a match.

Invariants: every regex is compiled with ``FLAGS`` (version 0 semantics:
the `re`-compatible dialect); the tree describes a superset of what the
regex can match, never less. This module never reads files; the only clock
it reads is this thread's CPU time, to judge a pattern's cost at load.

Why the time limit follows the machine: a fixed number of milliseconds
refused the shipped pack's own (linear) patterns on a CPU four times slower
than usual, so a sidecar could refuse its pack on a slow host and accept it
on a fast one. The limit is ``SLOW_SECONDS`` or ``SLOW_REFERENCES`` times
what a fixed linear reference pattern costs on this machine, whichever is
larger (at most ``MAX_SLOW_SECONDS``). A pattern that backtracks
quadratically costs dozens of references on any CPU, the pack's slowest
linear ones two or three, so the verdict is the same on fast and slow
machines; on a fast one the limit is ``SLOW_SECONDS``, as it always was.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import regex  # type: ignore[import-untyped, unused-ignore]

from chatguard.policy.regex_tree import ALL as ALL
from chatguard.policy.regex_tree import FLAGS as FLAGS
from chatguard.policy.regex_tree import MAX_CODE as MAX_CODE
from chatguard.policy.regex_tree import Alt as Alt
from chatguard.policy.regex_tree import Assert as Assert
from chatguard.policy.regex_tree import CharSet as CharSet
from chatguard.policy.regex_tree import Look as Look
from chatguard.policy.regex_tree import Node as Node
from chatguard.policy.regex_tree import Ranges as Ranges
from chatguard.policy.regex_tree import RegexRefused as RegexRefused
from chatguard.policy.regex_tree import Repeat as Repeat
from chatguard.policy.regex_tree import Seq as Seq
from chatguard.policy.regex_tree import chars as chars
from chatguard.policy.regex_tree import complement as complement
from chatguard.policy.regex_tree import intersects as intersects
from chatguard.policy.regex_tree import max_width as max_width
from chatguard.policy.regex_tree import merge as merge
from chatguard.policy.regex_tree import min_width as min_width
from chatguard.policy.regex_tree import parse as parse
from chatguard.policy.regex_tree import size as size
from chatguard.policy.regex_tree import walk as walk

#: Length of the generated worst-case inputs (longer than the default 4,096
#: characters a message is cut to).
PROBE_CHARS = 5000
#: Most CPU time a pattern may take on one probe input, on a machine of
#: ordinary speed (see ``slow_limit`` for a slower one).
SLOW_SECONDS = 0.025
#: On a slower machine: at most this many times the reference pattern's cost.
SLOW_REFERENCES = 6.0
#: The limit never exceeds this, however slow the machine measures.
MAX_SLOW_SECONDS = 0.25
#: The reference: a linear pattern shaped like the pack's sextortion threats
#: (a word, a bounded lazy gap, a word), on its own worst input.
REFERENCE_PATTERN = r"\b(?:or|else)\b[^.!?]{0,40}?\b(?:send|post)\b"
REFERENCE_TEXT = ("or " * PROBE_CHARS)[:PROBE_CHARS] + "!"
#: Wall-clock bound on one probe run, whatever the machine is doing.
RUNAWAY_SECONDS = 0.5
#: A repetition with no upper bound, or one above this, counts as unbounded
#: when looking for nested repetition.
BIG_REPEAT = 10


# --- Safety ----------------------------------------------------------------------


def _first(node: Node) -> tuple[Ranges, bool]:
    """The characters a match can start with, and whether it can be empty."""
    match node:
        case CharSet(_, upper, _):
            return upper, False
        case Assert() | Look():
            return (), True
        case Seq(items):
            acc: list[tuple[int, int]] = []
            for n in items:
                f, nullable = _first(n)
                acc += f
                if not nullable:
                    return merge(acc), False
            return merge(acc), True
        case Alt(branches):
            firsts = [_first(n) for n in branches]
            return merge([r for f, _ in firsts for r in f]), any(e for _, e in firsts)
        case Repeat(body, lo, _):
            f, nullable = _first(body)
            return f, nullable or lo == 0


def static_problem(root: Node) -> str | None:
    """Why ``root`` may take unbounded time, judged from its shape alone."""
    for node in walk(root):
        if isinstance(node, Look) and node.behind and max_width(node.body) is None:
            return "unsafe regex: a lookbehind must have a bounded width"
        if not isinstance(node, Repeat) or (node.hi is not None and node.hi <= BIG_REPEAT):
            continue
        for inner in walk(node.body):
            if isinstance(inner, Repeat) and inner.lo != inner.hi:
                return (
                    "unsafe regex: nested repetition (a repeated group holds another "
                    f"repetition); give the outer one a limit of at most {BIG_REPEAT}"
                )
            if isinstance(inner, Alt):
                firsts = [_first(b) for b in inner.branches]
                if any(nullable for _, nullable in firsts) or any(
                    intersects(a[0], b[0]) for k, a in enumerate(firsts) for b in firsts[k + 1 :]
                ):
                    return (
                        "unsafe regex: alternatives inside an unlimited repetition can "
                        "start with the same character (as in (a|aa)+)"
                    )
        if min_width(node.body) == 0:
            return "unsafe regex: a repetition repeats something that can match nothing"
    if min_width(root) == 0:
        return "regex matches the empty string, so it would fire on every message"
    return None


def _probe_inputs(root: Node) -> Iterator[tuple[str, str]]:
    """(description, text) worst cases: long runs of the pattern's own
    characters and words, ending in a character the pattern does not expect."""
    alphabet: dict[str, None] = {}
    words: dict[str, None] = {}
    run: list[str] = []
    for node in walk(root):
        if isinstance(node, Seq):
            run = []
            for item in node.items:
                if isinstance(item, CharSet) and item.literal is not None:
                    run.append(item.literal)
                else:
                    if len(run) > 1:
                        words["".join(run)] = None
                    run = []
            if len(run) > 1:
                words["".join(run)] = None
        if isinstance(node, CharSet) and node.lower:
            alphabet[node.literal or _sample(node.lower)] = None
    used = set(alphabet)
    for c in "a 0":
        alphabet.setdefault(c, None)
    tail = next(c for c in "!#~\x01" if c not in used)
    for c in list(alphabet)[:8]:
        yield f"{PROBE_CHARS:,} {c!r} characters", c * PROBE_CHARS + tail
    for w in list(words)[:4]:
        for unit in (w, w.strip() + " "):  # "snapsnap...", and "snap snap ..." for \b
            yield f"{unit!r} repeated", (unit * (PROBE_CHARS // len(unit) + 1))[:PROBE_CHARS] + tail
    mix = "".join(list(alphabet)[:8])
    yield f"{mix!r} repeated", (mix * (PROBE_CHARS // len(mix) + 1))[:PROBE_CHARS] + tail


def _sample(ranges: Ranges) -> str:
    """A typical member of a set: a letter, digit or space if it has one."""
    for c in "a0 eisz":
        if intersects(ranges, ((ord(c), ord(c)),)):
            return c
    return chr(ranges[0][0])


def _cpu_seconds(compiled: Any, text: str) -> float:
    """This thread's CPU time for one full scan (``RUNAWAY_SECONDS`` if stopped)."""
    started = time.thread_time()
    try:
        for _ in compiled.finditer(text, timeout=RUNAWAY_SECONDS):
            pass
    except TimeoutError:
        return RUNAWAY_SECONDS
    return time.thread_time() - started


@functools.cache
def slow_limit() -> float:
    """The CPU time a pattern may take on one probe input on this machine:
    ``SLOW_SECONDS``, or ``SLOW_REFERENCES`` times the reference pattern's
    cost when that is more (a slow machine), at most ``MAX_SLOW_SECONDS``.
    The reference is timed five times and the fastest run counts, so a busy
    moment never raises the limit; measured once per process."""
    compiled = regex.compile(REFERENCE_PATTERN, FLAGS)
    reference = min(_cpu_seconds(compiled, REFERENCE_TEXT) for _ in range(5))
    return min(MAX_SLOW_SECONDS, max(SLOW_SECONDS, SLOW_REFERENCES * reference))


def dynamic_problem(source: str, root: Node) -> str | None:
    """Whether ``source`` is too slow on generated worst-case inputs.

    Judged on this thread's CPU time, not wall time, so a busy machine never
    refuses a good pattern, against ``slow_limit()``, so a slow one does not
    either; a probe over the limit is run twice more and the fastest run
    counts, so noise near the limit does not flip the verdict.
    """
    compiled = regex.compile(source, FLAGS)
    limit = slow_limit()
    for what, text in _probe_inputs(root):
        spent = _cpu_seconds(compiled, text)
        if spent > limit:
            spent = min(spent, _cpu_seconds(compiled, text), _cpu_seconds(compiled, text))
        if spent > limit:
            ms = limit * 1000
            return f"unsafe regex: took more than {ms:.0f} ms on {what} ({spent * 1000:.0f} ms)"
    return None


def check_regex(source: str) -> Node:
    """Parse ``source`` and make sure it is safe to run; raises
    ``RegexRefused`` naming the reason otherwise."""
    root = parse(source)
    problem = static_problem(root) or dynamic_problem(source, root)
    if problem:
        raise RegexRefused(problem)
    return root
