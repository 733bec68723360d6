"""The regex subset a rule may use, read into a tree.

This module owns ``parse``: the supported subset of `regex`-module syntax
(see ``policies/README.md``) read into a small tree of immutable ``Node``
values; anything outside the subset (backreferences, inline flags, fuzzy
constraints, recursion, conditionals ...) is refused with ``RegexRefused``
and a reason. Each character class is described by two sets of code points,
``lower`` (surely matched) and ``upper`` (possibly matched), exact on ASCII
(probed with the `regex` module itself) and conservative elsewhere; and the
helpers that read the tree (widths, code point set arithmetic).

Invariants: every regex is compiled with ``FLAGS`` (version 0 semantics:
the `re`-compatible dialect); the tree describes a superset of what the
regex can match, never less; trees are never changed, so ``parse`` caches
them. Whether a parsed regex may *run* in the matcher is ``safety.py``'s
question. Never: read files or clocks.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import regex  # type: ignore[import-untyped, unused-ignore]

#: Flags every rule regex is compiled with, in the loader and the matcher.
FLAGS = regex.VERSION0

MAX_CODE = 0x10FFFF
Ranges = tuple[tuple[int, int], ...]
ALL: Ranges = ((0, MAX_CODE),)


class RegexRefused(ValueError):
    """A regex the policy pack may not use; ``str`` is the reason."""


# --- The tree ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CharSet:
    """One character from a set: ``lower`` surely matches, ``upper`` may."""

    lower: Ranges
    upper: Ranges
    literal: str | None = None  # set when the set is one written character


@dataclass(frozen=True, slots=True)
class Assert:
    """A zero-width assertion: ``^ $ \\A \\Z \\b \\B``."""

    kind: str


@dataclass(frozen=True, slots=True)
class Look:
    behind: bool
    negative: bool
    body: Node


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alt:
    branches: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Repeat:
    body: Node
    lo: int
    hi: int | None  # None: unbounded


Node = CharSet | Assert | Look | Seq | Alt | Repeat


def min_width(node: Node) -> int:
    match node:
        case CharSet():
            return 1
        case Assert() | Look():
            return 0
        case Seq(items):
            return sum(min_width(n) for n in items)
        case Alt(branches):
            return min(min_width(n) for n in branches)
        case Repeat(body, lo, _):
            return lo * min_width(body)


def max_width(node: Node) -> int | None:
    """The longest match, or None when unbounded."""
    match node:
        case CharSet():
            return 1
        case Assert() | Look():
            return 0
        case Seq(items) | Alt(items):
            widths = [max_width(n) for n in items]
            if any(w is None for w in widths):
                return None
            known = [w for w in widths if w is not None]
            return sum(known) if isinstance(node, Seq) else max(known, default=0)
        case Repeat(body, _, hi):
            w = max_width(body)
            if w == 0:
                return 0
            return None if w is None or hi is None else w * hi


def walk(node: Node) -> Iterator[Node]:
    yield node
    match node:
        case Look(_, _, body) | Repeat(body, _, _):
            yield from walk(body)
        case Seq(items) | Alt(items):
            for n in items:
                yield from walk(n)
        case _:
            pass


# --- Code point sets -------------------------------------------------------------


def merge(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return tuple(out)


def complement(ranges: Ranges, lo: int = 0, hi: int = MAX_CODE) -> Ranges:
    out: list[tuple[int, int]] = []
    at = lo
    for a, b in ranges:
        if b < lo or a > hi:
            continue
        if a > at:
            out.append((at, a - 1))
        at = max(at, b + 1)
    if at <= hi:
        out.append((at, hi))
    return tuple(out)


def intersects(x: Ranges, y: Ranges) -> bool:
    i = j = 0
    while i < len(x) and j < len(y):
        if x[i][1] < y[j][0]:
            i += 1
        elif y[j][1] < x[i][0]:
            j += 1
        else:
            return True
    return False


def size(ranges: Ranges) -> int:
    return sum(b - a + 1 for a, b in ranges)


def chars(ranges: Ranges) -> Iterator[str]:
    for a, b in ranges:
        for c in range(a, b + 1):
            yield chr(c)


@functools.lru_cache(maxsize=1024)
def _ascii_members(source: str) -> tuple[tuple[int, int], ...]:
    """The ASCII characters a one-character regex matches, asked of `regex`
    itself so that this module never disagrees with it on ASCII."""
    compiled = regex.compile(source, FLAGS)
    return tuple((c, c) for c in range(128) if compiled.fullmatch(chr(c)))


def _symbolic(source: str, negated: bool = False) -> CharSet:
    """A class whose non-ASCII members are not worked out (``\\w``, ``\\p{L}``)."""
    ascii_ = merge(_ascii_members(source))
    upper = merge([*ascii_, (0x80, MAX_CODE)])
    return CharSet(ascii_, upper)


def _literal(ch: str) -> CharSet:
    r = ((ord(ch), ord(ch)),)
    return CharSet(r, r, ch)


# --- The parser ------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_CLASS_ESCAPES = frozenset("dDwWsS")
_ASSERT_ESCAPES = frozenset("bBAZ")
_QUANTIFIER = regex.compile(r"\{(?:(\d+)(?:(,)(\d*))?|,(\d+))\}")


class _Parser:
    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0

    def fail(self, reason: str, at: int | None = None) -> RegexRefused:
        return RegexRefused(f"{reason} at position {self.i if at is None else at}")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def parse(self) -> Node:
        node = self.alternation()
        if self.i < len(self.s):  # only an unbalanced ")" stops early
            raise self.fail("unbalanced ')'")
        return node

    def alternation(self) -> Node:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else Alt(tuple(branches))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.i < len(self.s) and self.peek() not in "|)":
            atom = self.atom()
            items.append(self.quantified(atom))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def quantified(self, atom: Node) -> Node:
        c = self.peek()
        hi: int | None
        if c == "{":
            m = _QUANTIFIER.match(self.s, self.i)
            if m is None:
                if self.s.startswith("{e", self.i):
                    raise self.fail("fuzzy constraints are not supported in regex (use fuzzy:)")
                raise self.fail("write \\{ for a literal '{'")
            lo_s, comma, hi_s, only_hi = m.groups()
            if only_hi is not None:
                lo, hi = 0, int(only_hi)
            else:
                lo = int(lo_s)
                hi = lo if comma is None else (int(hi_s) if hi_s else None)
            self.i = m.end()
        elif c in ("*", "+", "?"):
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            self.i += 1
        else:
            return atom
        if self.peek() in ("?", "+"):  # lazy or possessive: the same matches, or fewer
            self.i += 1
        if self.peek() in ("*", "+", "?", "{"):
            raise self.fail("multiple repeat")
        return Repeat(atom, lo, hi)

    def atom(self) -> Node:
        c = self.s[self.i]
        start = self.i
        self.i += 1
        if c == "(":
            return self.group(start)
        if c == "[":
            return self.charset(start)
        if c == ".":
            return CharSet(complement(((10, 10),)), ALL)
        if c in "^$":
            return Assert(c)
        if c == "\\":
            return self.escape(start)
        if c in "*+?{":
            raise self.fail("nothing to repeat", start)
        if c == "}":
            raise self.fail("write \\} for a literal '}'", start)
        return _literal(c)

    def group(self, start: int) -> Node:
        behind = negative = False
        look = False
        if self.peek() == "?":
            rest = self.s[self.i + 1 : self.i + 4]
            if rest.startswith((":", ">")):
                self.i += 2
            elif rest.startswith(("=", "!")):
                look, negative = True, rest[0] == "!"
                self.i += 2
            elif rest.startswith(("<=", "<!")):
                look, behind, negative = True, True, rest[1] == "!"
                self.i += 3
            elif rest.startswith(("P<", "<")):
                end = self.s.find(">", self.i)
                if end < 0:
                    raise self.fail("unterminated group name", start)
                self.i = end + 1
            elif rest.startswith(("P=", "P>", "&")):
                raise self.fail("backreferences are not allowed", start)
            elif rest[:1] in ("#",):
                raise self.fail("comments are not supported in regex", start)
            elif rest[:1] in ("|", "(", "R") or rest[:1].isdigit():
                raise self.fail("unsupported group syntax '(?" + rest[:1] + "'", start)
            else:
                raise self.fail("inline flags are not supported (messages are already lower case)")
        body = self.alternation()
        if self.peek() != ")":
            raise self.fail("missing ')'", start)
        self.i += 1
        return Look(behind, negative, body) if look else body

    def escape(self, start: int) -> Node:
        c = self.peek()
        if not c:
            raise self.fail("bad escape (end of pattern)", start)
        self.i += 1
        if c in _ASSERT_ESCAPES:
            return Assert("\\" + c)
        if c in _CLASS_ESCAPES:
            return _symbolic("\\" + c)
        if c in "pP":
            return _symbolic(self.s[start : self.property_end()])
        return _literal(self.escaped_char(c, start))

    def property_end(self) -> int:
        if self.peek() == "{":
            end = self.s.find("}", self.i)
            if end < 0:
                raise self.fail("unterminated property name")
            self.i = end + 1
        else:
            self.i += 1
        return self.i

    def escaped_char(self, c: str, start: int) -> str:
        """The character ``\\c...`` stands for (``self.i`` is past ``c``)."""
        if c in _ESCAPES:
            return _ESCAPES[c]
        if c in _HEX_ESCAPES:
            n = _HEX_ESCAPES[c]
            digits = self.s[self.i : self.i + n]
            self.i += n
            return chr(int(digits, 16))
        if c == "N" and self.peek() == "{":
            end = self.s.find("}", self.i)
            name = self.s[self.i + 1 : end]
            self.i = end + 1
            return unicodedata.lookup(name)
        if c == "0":
            raise self.fail("unsupported escape '\\0'", start)
        if c.isdigit() or c in "gk":
            raise self.fail("backreferences are not allowed", start)
        if c.isascii() and c.isalnum():
            raise self.fail(f"unsupported escape '\\{c}'", start)
        return c

    def charset(self, start: int) -> CharSet:
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        if self.peek() == "]":
            raise self.fail("write \\] for a ']' inside a set", self.i)
        explicit: list[tuple[int, int]] = []
        symbolic = False
        while True:
            c = self.peek()
            if not c:
                raise self.fail("unterminated character set", start)
            if c == "]":
                self.i += 1
                break
            if c == "[":
                if not self.s.startswith("[:", self.i):
                    raise self.fail("write \\[ for a '[' inside a set")
                end = self.s.find(":]", self.i)
                if end < 0:
                    raise self.fail("unterminated POSIX class")
                self.i = end + 2
                symbolic = True
                continue
            lo = self.set_char()
            if lo is None:
                symbolic = True
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self.set_char()
                if hi is None:
                    raise self.fail("a range needs a character at each end")
                explicit.append((ord(lo), ord(hi)))
            else:
                explicit.append((ord(lo), ord(lo)))
        # ASCII members come from `regex` itself; others from what was written.
        ascii_ = merge(_ascii_members(self.s[start : self.i]))
        written = complement(complement(merge(explicit), 0x80), 0x80)  # non-ASCII ones
        if not negated:
            lower = merge([*ascii_, *written])
            upper = merge([*ascii_, (0x80, MAX_CODE)]) if symbolic else lower
        else:
            upper = merge([*ascii_, *complement(written, 0x80)])
            lower = ascii_ if symbolic else upper
        return CharSet(lower, upper)

    def set_char(self) -> str | None:
        """One character in a set, or None for a class escape (``\\w``)."""
        start = self.i
        c = self.s[self.i]
        self.i += 1
        if c != "\\":
            return c
        e = self.peek()
        self.i += 1
        if e in _CLASS_ESCAPES:
            return None
        if e in "pP":
            self.property_end()
            return None
        if e == "b":
            raise self.fail("'\\b' inside a set is ambiguous: write \\x08", start)
        return self.escaped_char(e, start)


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> Node:
    """The tree of a regex that `regex` compiles with ``FLAGS``; raises
    ``RegexRefused`` for syntax outside the supported subset.

    Cached (trees are immutable): the loader checks every regex of a pack
    and the matcher then builds its probes from the same trees, so a pack's
    regexes are parsed once, not twice; a reload parses only what changed."""
    try:
        regex.compile(source, FLAGS)
    except regex.error as e:
        raise RegexRefused(f"bad regex: {e}") from None
    try:
        return _Parser(source).parse()
    except (ValueError, KeyError, IndexError) as e:
        if isinstance(e, RegexRefused):
            raise
        raise RegexRefused(f"unsupported regex syntax: {e}") from None


LeadingLooks = tuple[tuple[tuple[bool, str], ...], str]


def leading_looks(source: str) -> LeadingLooks | None:
    """For a regex that begins ``^`` and one or more lookaheads (``(?=...)``,
    ``(?!...)``), with no alternation around them: each lookahead as
    ``(negative, body source)``, and the source after them. None for any
    other regex, or one outside the supported subset.

    The sources are cut where the parser itself ends each group, so a body is
    exactly what `regex` reads inside the parentheses."""
    if not source.startswith(("^(?=", "^(?!")):
        return None
    try:
        root = parse(source)
    except RegexRefused:
        return None
    if not isinstance(root, Seq) or root.items[0] != Assert("^"):
        return None  # an alternation at the top: the lookaheads bind one branch
    p = _Parser(source)
    p.i = 1
    looks: list[tuple[bool, str]] = []
    while source.startswith(("(?=", "(?!"), p.i):
        start = p.i
        p.i += 1
        p.group(start)
        if p.peek() in ("*", "+", "?", "{"):
            return None  # a repeated lookahead: not worth reading apart
        looks.append((source[start + 2] == "!", source[start + 3 : p.i - 1]))
    return tuple(looks), source[p.i :]
