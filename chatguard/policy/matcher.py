"""Which rules a normalised message matches, and where.

``build_matcher(rules)`` turns rules into a ``Matcher``; ``Matcher.scan``
takes a ``Normalised`` message and returns a ``RuleHit`` for each rule that
matches it, in rule order, with the matched spans in the *original* text.

Every distinct pattern expression is a *unit*. A scan has two steps:

1. **Candidates.** A multi-pattern prefilter finds the units that may match
   the folded text, in one pass over it, whatever the number of rules:
   ``hyperscan`` (one compiled database for every unit) or ``fallback``
   (a pyahocorasick automaton over literals every match must contain).
2. **Confirmation.** Each candidate unit is run with the `regex` module
   (``safety.FLAGS``) on the folded text, with a timeout; its matches give
   the spans. A timeout counts as no match and adds one to
   ``Matcher.timeouts``. The timeout reads the process's CPU clock at least
   twice a call, which on a short message costs more than the match itself;
   so a unit whose work bound (``regex_work.search_steps``) on a text of that
   length, counted at ``STEP_SECONDS`` a step, stays within the timeout is run
   without it: it cannot run longer than the timeout would let it. A regex
   led by lookaheads ("A somewhere, B somewhere, then C") is confirmed part
   by part (``lookahead_confirm``), the parts the prefilter did not probe
   first: the same spans, most false candidates ended after one search.

What Hyperscan is given for each unit (``Probe``):

* a phrase or word: its folded literal, exactly. Word edges and ``\\s+`` are
  left to confirmation (``\\b`` costs Hyperscan a hundred times the compile
  time); a text whose white space is not single spaces, which the normaliser
  never makes, is prefiltered by each phrase's longest word instead;
* a fuzzy phrase or word: Hyperscan's edit distance, on ASCII texts only
  (it counts bytes and refuses UTF-8), and on other texts N + 1 exact pieces
  of the literal, one of which survives any N typing errors;
* a regex: ``hs_regex`` (``prefilter.py``) of its ``safety`` tree, a translation that matches
  at least as much, compiled with ``HS_FLAG_PREFILTER`` (a regex that ends
  with ``$`` keeps it: its probe finds only texts ending that way).

An expression Hyperscan refuses is replaced by its unit's literal keys, or by
nothing (the unit is then confirmed on every message).

The library: on x86-64 the project installs the ``hyperscan`` package that
bundles Intel Hyperscan 5.4.2. Later packages bundle Vectorscan 5.4.12,
which misses matches of some of the pack's expressions ("im in 9th" by an
expression with optional groups); a test compares both backends on every
message of the evaluation set. ``auto`` takes Hyperscan only when it is
Intel's (``exact_hyperscan``); ``hyperscan`` takes whatever is installed.

Invariants: a prefilter may over-report but never miss, so both backends
return identical hits. A rule whose ``unless`` or ``signal_unless``
patterns match the same message is not returned. The one per-message
state kept past a scan is the last text's candidates and confirmations,
which ``talked_about`` reuses when asked of the same text: both depend on
the text alone, so reusing them changes no answer. `regex` expressions are
compiled on first use, and each unit's work bound is worked out on first
use for a few text lengths (powers of two). No confirmation runs without a
bound on its time: the timeout, or a work bound within it.

The only I/O: with ``cache_dir``, the compiled Hyperscan database is saved
there and loaded on the next build of the same units, keyed by a hash of
every probe (expression, flags, edit distance, unit), the hyperscan package
and library versions and the machine type. The directory keeps at most
``MAX_CACHED_DATABASES`` of them (each holds the whole database: about 30 MB
for the default pack): saving one more removes the least recently used, so
editing a pack over and over does not fill the disk. A Matcher is not thread-safe
(Hyperscan scratch space is per database).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import ahocorasick
import regex  # type: ignore[import-untyped, unused-ignore]

from chatguard.policy import prefilter, regex_tree, regex_work, safety
from chatguard.policy.frozen import quick_init
from chatguard.policy.lookahead_confirm import LeadingLooks
from chatguard.policy.model import Pattern, Rule, Signal
from chatguard.policy.normalise import Normalised
from chatguard.policy.prefilter import (
    ASCII_SPACE,
    Keys,
    fuzzy_pieces,
    hs_literal,
    hs_regex,
    regex_keys,
)

try:
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - platforms without a wheel
    HAVE_HYPERSCAN = False

DEFAULT_TIMEOUT = 0.05  # seconds for one pattern on one message
#: What one step of the `regex` module's search is assumed to cost when a
#: confirmation may skip the timeout: measured at 1 to 2 ns; a hundred times
#: that leaves room for a slow or busy machine and for steps that cost more.
STEP_SECONDS: Final = 1e-7
_CACHE_FORMAT = b"chatguard-hs-1\n"
MAX_CACHED_DATABASES = 4  # Hyperscan databases kept in one cache directory


@quick_init
@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched, and where in the original text."""

    rule: Rule
    spans: tuple[tuple[int, int], ...]


class Gate(enum.IntEnum):
    """Which texts a Hyperscan expression is trusted on."""

    ANY = 0
    ASCII = 1  # only when the folded text is ASCII (byte-wise edit distance)
    NON_ASCII = 2


@dataclass(frozen=True, slots=True)
class Probe:
    """One Hyperscan expression standing for (a superset of) one unit."""

    expression: str
    flags: int
    unit: int
    gate: Gate = Gate.ANY
    edit_distance: int = 0


class _Unit:
    """One distinct pattern expression. What each finder needs from it is
    worked out on first use: a start with a cached Hyperscan database needs
    none of it, and compiling every `regex` of a big pack costs seconds."""

    def __init__(self, index: int, pattern: Pattern) -> None:
        self.index = index
        self.pattern = pattern
        self.compiled: Any = None  # regex.Pattern, on first confirmation
        self._looks: LeadingLooks | None = None  # ``looks()``, on first confirmation
        self._looks_known = False
        # What ``untimed`` found so far, for one step budget: texts up to
        # ``_within`` characters need no timeout, from ``_beyond`` on they do.
        self._budget = -1
        self._within = -1
        self._beyond = 1 << 62
        # The bound's memo is keyed by the ids of the tree's nodes, so the
        # tree must live as long as the memo: kept here, not re-parsed.
        self._work: regex_work.Memo = {}  # what the bound reads once from the tree
        self._tree: safety.Node | None = None
        self._tree_known = False

    def untimed(self, n: int, timeout: float) -> bool:
        """Whether confirming this unit on a text of ``n`` characters cannot
        run for ``timeout`` seconds even at ``STEP_SECONDS`` a step, by its
        work bound on texts of ``n`` rounded up to a power of two (so a
        unit's bound is worked out a few times, not once per message)."""
        budget = int(timeout / STEP_SECONDS)
        if budget != self._budget:
            self._budget, self._within, self._beyond = budget, -1, 1 << 62
        if n <= self._within:
            return True
        if n >= self._beyond:
            return False
        size = 1 << max(n - 1, 0).bit_length()  # the least power of two >= n
        tree = self.tree()
        if tree is not None and regex_work.search_steps(tree, size, self._work) <= budget:
            self._within = size
            return True
        # Longer texts than ``size`` need the timeout too (the bound grows
        # with the text); shorter ones may not: they are asked on their own.
        self._beyond = min(self._beyond, 0 if tree is None else size // 2 + 1)
        return False

    def tree(self) -> safety.Node | None:
        """The tree of the unit's expression, literal or regex (None when the
        parser refuses it, as fuzzy ones: those always run with the timeout).
        Worked out on first use and kept in plain attributes, as ``looks``:
        in the compiled build a ``cached_property`` is worked out again on
        every read, and a new tree would reuse the ids of a freed one that
        ``_work`` still holds entries for."""
        if not self._tree_known:
            if self.pattern.literal is None:
                self._tree = self.root
            else:
                try:
                    self._tree = safety.parse(self.pattern.expression)
                except safety.RegexRefused:
                    self._tree = None
            self._tree_known = True
        return self._tree

    def looks(self) -> LeadingLooks | None:
        """The regex read as its lookaheads and the rest, when it begins with
        lookaheads (``lookahead_confirm``); None otherwise. Worked out on
        first use and kept in plain attributes: in the compiled build a
        ``cached_property`` of this class is worked out again on every read."""
        if not self._looks_known:
            root = self.root
            if root is not None:
                self._looks = LeadingLooks.build(
                    self.pattern.expression, prefilter.probed_look(root)
                )
            self._looks_known = True
        return self._looks

    @functools.cached_property
    def root(self) -> safety.Node | None:
        if self.pattern.literal is not None:
            return None
        try:
            return safety.parse(self.pattern.expression)
        except safety.RegexRefused:
            return None  # built past the loader: confirmed on every message

    @functools.cached_property
    def keys(self) -> Keys | None:
        """Literals one of which every match holds, on texts whose only white
        space is single spaces (None: confirm on every message)."""
        literal, fuzzy = self.pattern.literal, self.pattern.fuzzy
        if literal is None:
            return regex_keys(self.root) if self.root is not None else None
        return fuzzy_pieces(literal, fuzzy) if fuzzy else frozenset({literal})

    @functools.cached_property
    def loose(self) -> Keys | None:
        """As ``keys``, on any text."""
        literal = self.pattern.literal
        if literal is None or self.pattern.fuzzy:
            return self.keys
        return frozenset({max(literal.split(" "), key=len)})

    def probes(self) -> list[Probe]:
        return _probes(self.index, self.pattern, self.root)


def _probes(index: int, pattern: Pattern, root: safety.Node | None) -> list[Probe]:
    base = hyperscan.HS_FLAG_SINGLEMATCH
    utf8 = base | hyperscan.HS_FLAG_UTF8
    literal = pattern.literal
    if literal is not None and pattern.fuzzy:
        # Hyperscan counts edits in bytes, and refuses UTF-8 with them: on
        # ASCII text its edit distance is exact; elsewhere the pieces stand in.
        pieces = sorted(fuzzy_pieces(literal, pattern.fuzzy))
        if not literal.isascii():
            return [Probe(hs_literal(p), utf8, index) for p in pieces]
        body = ASCII_SPACE.join(map(hs_literal, literal.split(" ")))
        out = [Probe(body, base, index, Gate.ASCII, pattern.fuzzy)]
        return out + [Probe(hs_literal(p), utf8, index, Gate.NON_ASCII) for p in pieces]
    if literal is not None:
        return [Probe(hs_literal(literal), utf8, index)]
    if root is not None:
        return [Probe(hs_regex(root), utf8 | hyperscan.HS_FLAG_PREFILTER, index)]
    return []


def _key_probes(unit: _Unit, flags: int) -> list[Probe]:
    keys = sorted(unit.keys) if unit.keys else []
    return [Probe(hs_literal(k), flags, unit.index) for k in keys]


# --- Candidate finders ---------------------------------------------------------------


class _Finder(Protocol):
    always: frozenset[int]  # units with no prefilter: confirmed on every message

    def candidates(self, text: str) -> set[int]: ...


class _AhoCorasick:
    def __init__(self, units: Sequence[_Unit], *, loose: bool = False) -> None:
        by_key: dict[str, list[int]] = {}
        for i, unit in enumerate(units):
            for key in (unit.loose if loose else unit.keys) or ():
                by_key.setdefault(key, []).append(i)
        self.automaton = ahocorasick.Automaton()
        for key, ids in by_key.items():
            self.automaton.add_word(key, tuple(ids))
        self.empty = not by_key
        self.always = frozenset(i for i, unit in enumerate(units) if unit.keys is None)
        if not self.empty:
            self.automaton.make_automaton()

    def candidates(self, text: str) -> set[int]:
        if self.empty:
            return set()
        return {u for _, ids in self.automaton.iter(text) for u in ids}


def _on_match(probe: int, start: int, end: int, flags: int, hits: Any) -> None:
    hits.append(probe)  # a list[int]; called for every probe that matches, so no cast()


class _Hyperscan:
    def __init__(self, units: Sequence[_Unit], cache_dir: Path | None) -> None:
        self.compiles = 0
        self.cache_hit = False
        path = cache_dir / f"hs-{_cache_key(units)}.db" if cache_dir is not None else None
        if path is not None and (loaded := _load(path)) is not None:
            self.db, probes = loaded
            self.cache_hit = True
            _mark_used(path)
        else:
            probes = [p for unit in units for p in unit.probes()]
            self.db, probes = self._compile(units, probes)
            if path is not None:
                _save(path, self.db, probes)
                _prune(path.parent, keep=MAX_CACHED_DATABASES)
        self.probes = probes
        self.always = frozenset(range(len(units))) - {p.unit for p in probes}
        # Per probe id, the unit it stands for on ASCII and on other texts (-1: neither).
        self.on_ascii = [p.unit if p.gate != Gate.NON_ASCII else -1 for p in probes]
        self.on_other = [p.unit if p.gate != Gate.ASCII else -1 for p in probes]

    def _compile(self, units: Sequence[_Unit], probes: list[Probe]) -> tuple[Any, list[Probe]]:
        try:
            return self._database(probes), probes
        except hyperscan.error:
            pass
        # Some expression Hyperscan refuses: find them one by one, and stand
        # in for their units with their literal keys (or none: always run).
        kept: list[Probe] = []
        for probe in probes:
            if not probe.flags & hyperscan.HS_FLAG_PREFILTER and not probe.edit_distance:
                kept.append(probe)
                continue
            try:
                self._database([probe])
                kept.append(probe)
            except hyperscan.error:
                unit = units[probe.unit]
                utf8 = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_UTF8
                if probe.edit_distance:  # use the pieces on every text
                    kept += [
                        Probe(p.expression, p.flags, p.unit)
                        for p in unit.probes()
                        if p.gate == Gate.NON_ASCII
                    ]
                else:
                    kept += _key_probes(unit, utf8)
        return self._database(kept), kept

    def _database(self, probes: Sequence[Probe]) -> Any:
        self.compiles += 1
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        if probes:
            db.compile(
                expressions=[p.expression.encode() for p in probes],
                ids=list(range(len(probes))),
                elements=len(probes),
                flags=[p.flags for p in probes],
                ext=[_ext(p) for p in probes],
            )
        return db

    def candidates(self, text: str) -> set[int]:
        if not self.probes:
            return set()
        hits: list[int] = []
        self.db.scan(text.encode("utf-8", "replace"), match_event_handler=_on_match, context=hits)
        units = self.on_ascii if text.isascii() else self.on_other
        found = {units[i] for i in hits}
        found.discard(-1)
        return found


def _ext(probe: Probe) -> tuple[int, int, int, int, int, int]:
    if probe.edit_distance:
        return (hyperscan.HS_EXT_FLAG_EDIT_DISTANCE, 0, 0, 0, probe.edit_distance, 0)
    return (0, 0, 0, 0, 0, 0)


def _cache_key(units: Sequence[_Unit]) -> str:
    """What the database is built from: every unit, the code that turns units
    into probes (this module, ``prefilter``, ``regex_tree`` and ``safety``), and the versions of the
    libraries and the machine type, so that any change builds anew."""
    digest = hashlib.sha256(_CACHE_FORMAT)
    for module in (__file__, prefilter.__file__, regex_tree.__file__, safety.__file__):
        digest.update(Path(module).read_bytes())
    versions = [_hs_version(), regex.__version__, platform.machine()]
    described = [[u.pattern.expression, u.pattern.literal, u.pattern.fuzzy] for u in units]
    digest.update(json.dumps([versions, described]).encode())
    return digest.hexdigest()


def _hs_version() -> str:
    """The python package's version and the library's (from a tiny database)."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[b"a"])
    info: str | bytes = db.info()
    library = info.decode() if isinstance(info, bytes) else info
    return f"{getattr(hyperscan, '__version__', '?')} {library}"


# Intel Hyperscan's last release. Vectorscan, which later hyperscan packages
# bundle, numbers its releases after it (5.4.9 and on) and misses matches.
_LAST_INTEL = (5, 4, 2)


def exact_library(version: str) -> bool:
    """Whether a library that describes itself as ``version`` (``_hs_version``)
    is Intel Hyperscan, whose matches the fallback's agree with."""
    found = regex.search(r"Version: (\d+)\.(\d+)\.(\d+)", version)
    return found is not None and tuple(map(int, found.groups())) <= _LAST_INTEL


@functools.lru_cache(maxsize=1)
def exact_hyperscan() -> bool:
    """Whether the installed hyperscan package bundles Intel Hyperscan."""
    return HAVE_HYPERSCAN and exact_library(_hs_version())


def _load(path: Path) -> tuple[Any, list[Probe]] | None:
    try:
        data = path.read_bytes()
        if not data.startswith(_CACHE_FORMAT):
            return None
        header, _, blob = data[len(_CACHE_FORMAT) :].partition(b"\n")
        probes = [Probe(e, f, u, Gate(g), d) for e, f, u, g, d in json.loads(header)]
        db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
        db.scratch = hyperscan.Scratch(db)
        db.scan(b"", match_event_handler=_on_match, context=[])
    except (OSError, ValueError, TypeError, hyperscan.error):
        return None  # missing, stale or from another platform: compile instead
    return db, probes


def _save(path: Path, db: Any, probes: Sequence[Probe]) -> None:
    header = json.dumps(
        [[p.expression, p.flags, p.unit, int(p.gate), p.edit_distance] for p in probes]
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".hs-")
    except OSError:
        return  # the cache only saves time; a read-only directory is not an error
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_CACHE_FORMAT + header.encode() + b"\n" + hyperscan.dumpb(db))
        os.replace(tmp, path)  # whole or not at all, for a concurrent reader
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _mark_used(path: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only cache is still a cache
        os.utime(path)  # the newest modification time: the last one used


def _prune(directory: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used databases in ``directory``."""
    try:
        found = [(p.stat().st_mtime, p) for p in directory.glob("hs-*.db")]
    except OSError:
        return
    for _, old in sorted(found, reverse=True)[keep:]:
        # Another process may have removed it, or the directory is read-only.
        with contextlib.suppress(OSError):
            old.unlink()


# --- The matcher ---------------------------------------------------------------------


class Matcher:
    """Scans normalised messages for rule matches (see the module docstring)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        units: Sequence[_Unit],
        finder: _Finder,
        backend: str,
        timeout: float,
    ) -> None:
        self.rules = tuple(rules)
        self.backend = backend
        self.timeout = timeout
        self.timeouts = 0
        self.cache_hit = isinstance(finder, _Hyperscan) and finder.cache_hit
        self.compiles = finder.compiles if isinstance(finder, _Hyperscan) else 0
        self._units = list(units)
        self._finder = finder
        self._loose: _AhoCorasick | None = None
        # The last text scanned, its candidates and its confirmations: the
        # engine asks ``talked_about`` of the same text right after ``scan``
        # when the signal model finds something, and need not scan it again.
        self._last_text = ""
        self._last_candidates: set[int] | frozenset[int] = frozenset()
        self._last_found: dict[int, list[tuple[int, int]]] = {}
        ids = {u.pattern.expression: i for i, u in enumerate(units)}
        self._patterns = [
            tuple(dict.fromkeys(ids[p.expression] for p in r.patterns)) for r in rules
        ]
        # A rule is cancelled by its ``unless`` and its ``signal_unless``
        # patterns; the signal model's findings only by ``signal_unless`` ones.
        self._unless = [
            tuple(dict.fromkeys(ids[p.expression] for p in (*r.unless, *r.signal_unless)))
            for r in rules
        ]
        rules_of: list[set[int]] = [set() for _ in units]
        for r, unit_ids in enumerate(self._patterns):
            for u in unit_ids:
                rules_of[u].add(r)
        self._rules_of = [tuple(sorted(rs)) for rs in rules_of]
        unless_of: dict[Signal, dict[int, None]] = {}
        for rule in rules:
            unless_of.setdefault(rule.signal, {}).update(
                dict.fromkeys(ids[p.expression] for p in rule.signal_unless)
            )
        self._unless_of = {s: tuple(us) for s, us in unless_of.items()}

    @property
    def units(self) -> int:
        """How many distinct pattern expressions the rules hold."""
        return len(self._units)

    def scan(self, norm: Normalised) -> list[RuleHit]:
        text = norm.folded
        if not text:
            return []
        finder: _Finder = self._finder
        if "  " in text or not text.isprintable():
            # White space other than single spaces (every white space character
            # but the space is unprintable): not what the normaliser makes, and
            # not what phrase literals expect; find by single words instead.
            if self._loose is None:
                self._loose = _AhoCorasick(self._units, loose=True)
            finder = self._loose
        candidates = finder.candidates(text) | finder.always
        found: dict[int, list[tuple[int, int]]] = {}
        self._last_text, self._last_candidates, self._last_found = text, candidates, found
        # Each rule with its candidate units, from the few candidates rather
        # than from each rule's many patterns. In no particular order: the
        # spans are sorted below, and every candidate unit is confirmed.
        units_of: dict[int, list[int]] = {}
        for u in candidates:
            for r in self._rules_of[u]:
                units = units_of.get(r)
                if units is None:
                    units_of[r] = [u]
                else:
                    units.append(u)
        if not units_of:
            return []
        hits: list[RuleHit] = []
        for r in sorted(units_of):
            spans = [s for u in units_of[r] for s in self._confirm(u, text, found)]
            if not spans or any(
                self._confirm(u, text, found) for u in self._unless[r] if u in candidates
            ):
                continue
            mapped = sorted({norm.folded_span_to_original(a, b) for a, b in spans})
            hits.append(RuleHit(self.rules[r], tuple(mapped)))
        return hits

    def talked_about(self, norm: Normalised, signals: Sequence[Signal]) -> set[Signal]:
        """Which of ``signals`` the text does not carry: some rule of that
        signal has a ``signal_unless`` pattern that matches it ("if anyone
        asks you to...", "a pic of the cat"). The signal model's findings
        defer to these guards as the rules do; a rule's ``unless`` guards
        cancel that rule only."""
        text = norm.folded
        if not text or not any(self._unless_of.get(s) for s in signals):
            return set()
        if text == self._last_text:
            # Any finder's candidates will do: confirmation decides.
            candidates, found = self._last_candidates, self._last_found
        else:
            candidates = self._finder.candidates(text) | self._finder.always
            found = {}
        return {
            s
            for s in signals
            if any(
                self._confirm(u, text, found) for u in self._unless_of.get(s, ()) if u in candidates
            )
        }

    def _confirm(
        self, u: int, text: str, found: dict[int, list[tuple[int, int]]]
    ) -> list[tuple[int, int]]:
        spans = found.get(u)
        if spans is None:
            spans = []
            unit = self._units[u]
            timeout: float | None = self.timeout
            if timeout is not None and unit.untimed(len(text), timeout):
                timeout = None  # bounded without it (see the module docstring)
            looks = unit.looks()
            try:
                if looks is not None and looks.applies(text):
                    spans = looks.spans(text, timeout)
                else:
                    if unit.compiled is None:
                        unit.compiled = regex.compile(unit.pattern.expression, safety.FLAGS)
                    for m in unit.compiled.finditer(text, timeout=timeout):
                        if m.end() > m.start():
                            spans.append(m.span())
            except TimeoutError:
                self.timeouts += 1
                spans = []
            found[u] = spans
        return spans


def build_matcher(
    rules: Sequence[Rule],
    *,
    backend: str = "auto",
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Matcher:
    """A matcher for ``rules``. ``backend`` is ``hyperscan``, ``fallback``
    (pyahocorasick) or ``auto``: Hyperscan when the installed package bundles
    Intel Hyperscan, the fallback otherwise (Vectorscan misses matches, and a
    missed match is worse than the fallback's cost)."""
    if backend not in ("auto", "hyperscan", "fallback"):
        raise ValueError(f"unknown matcher backend {backend!r}")
    if backend == "hyperscan" and not HAVE_HYPERSCAN:
        raise RuntimeError("the hyperscan package is not installed")
    use_hyperscan = backend == "hyperscan" or (backend == "auto" and exact_hyperscan())
    patterns: dict[str, Pattern] = {}
    for rule in rules:
        for pattern in (*rule.patterns, *rule.unless, *rule.signal_unless):
            patterns.setdefault(pattern.expression, pattern)
    units = [_Unit(i, p) for i, p in enumerate(patterns.values())]
    if use_hyperscan:
        try:
            return Matcher(rules, units, _Hyperscan(units, cache_dir), "hyperscan", timeout)
        except hyperscan.error:
            if backend == "hyperscan":
                raise
    return Matcher(rules, units, _AhoCorasick(units), "fallback", timeout)
