"""What a prefilter looks for: literals every match of a regex holds, and
Hyperscan expressions that match at least what a regex matches.

This module owns two pure translations of a ``safety`` tree, used by
``matcher.py`` to build its candidate finders:

* ``regex_keys``: a set of literals one of which every text the regex
  matches in holds (for the Aho-Corasick fallback, and where Hyperscan
  refuses an expression); ``fuzzy_pieces`` does the same for a fuzzy literal;
* ``hs_regex`` / ``hs_literal``: Hyperscan expressions matching a superset.

Invariant: both may over-approximate and never under-approximate what the
regex matches, so a prefilter built from them never misses a match (the
property test ``tests/test_policy_prefilter.py`` checks it on random
regexes). Never: compile, scan or do I/O.
"""

from __future__ import annotations

from chatguard.policy import safety

_MAX_SET = 64  # most literal strings tracked for one regex node
_SMALL_SET = 10  # a class of at most this many characters counts as literals ([0-9])
# Hyperscan compile time grows fast with counted repeats and wide UTF-8
# classes ("[^.!?]{0,40}" alone took seconds): repeats above this count are
# made unbounded, classes wider than _HS_WIDE become "any character". Both
# only widen what a probe matches.
_HS_REPEAT = 3
_HS_WIDE = 256
ASCII_SPACE = r"[\t-\r ]+"  # the ASCII members of `regex`'s \s, repeated


Keys = frozenset[str]


def _quality(keys: Keys | None) -> tuple[int, int]:
    return (min(map(len, keys)), -len(keys)) if keys else (-1, 0)


def _better(a: Keys | None, b: Keys | None) -> Keys | None:
    return a if _quality(a) >= _quality(b) else b


def _as_keys(exact: Keys | None) -> Keys | None:
    return exact if exact and "" not in exact else None


def _product(a: Keys, b: Keys) -> Keys | None:
    return frozenset(x + y for x in a for y in b) if len(a) * len(b) <= _MAX_SET else None


def _literals(node: safety.Node) -> tuple[Keys | None, Keys | None]:
    """(exact, keys): every string the node can match when that set is small,
    and a set of literals one of which every text the node matches in holds."""
    match node:
        case safety.CharSet(_, upper, _):
            if safety.size(upper) > _SMALL_SET:
                return None, None
            members = frozenset(safety.chars(upper))
            return members, members
        case safety.Assert():
            return frozenset({""}), None
        case safety.Look(_, negative, body):
            # Zero width, but a positive lookaround's text is in the message.
            return frozenset({""}), None if negative else _best_keys(body)
        case safety.Seq(items):
            run: Keys | None = frozenset({""})
            whole = True
            best: Keys | None = None
            for item in items:
                exact, keys = _literals(item)
                best = _better(best, keys)
                joined = _product(run, exact) if run is not None and exact is not None else None
                if joined is None:
                    best = _better(best, _as_keys(run))
                    whole = False
                run = joined if joined is not None else exact
            best = _better(best, _as_keys(run))
            return (run if whole else None), best
        case safety.Alt(branches):
            subs = [_literals(b) for b in branches]
            exacts = [e for e, _ in subs]
            union: Keys | None = None
            if all(e is not None for e in exacts):
                union = frozenset(s for e in exacts if e is not None for s in e)
                union = union if len(union) <= _MAX_SET else None
            branch_keys = [_better(k, _as_keys(e)) for e, k in subs]
            if any(k is None for k in branch_keys):
                return union, None
            return union, frozenset(s for k in branch_keys if k is not None for s in k)
        case safety.Repeat(body, lo, hi):
            exact, keys = _literals(body)
            out: Keys | None = None
            if exact is not None and hi is not None and hi <= 3:
                power: Keys | None = frozenset({""})
                acc: set[str] = set()
                for k in range(hi + 1):
                    if k >= lo and power is not None:
                        acc |= power
                    power = _product(power, exact) if power is not None else None
                out = frozenset(acc) if power is not None and len(acc) <= _MAX_SET else None
            return out, (_better(keys, _as_keys(exact)) if lo >= 1 else None)


def _best_keys(node: safety.Node) -> Keys | None:
    exact, keys = _literals(node)
    return _better(keys, _as_keys(exact))


def regex_keys(root: safety.Node) -> Keys | None:
    """Literals one of which every text the regex matches in holds, or None
    when none are known. Even one-character keys ("8", "9") beat running the
    regex on every message."""
    return _best_keys(root)


def fuzzy_pieces(literal: str, edits: int) -> Keys:
    """``edits + 1`` disjoint pieces of ``literal`` without spaces: ``edits``
    typing errors spoil at most ``edits`` of them, so one always survives."""
    parts = literal.split(" ")
    while len(parts) < edits + 1 and max(map(len, parts)) > 1:
        longest = max(parts, key=len)
        parts.remove(longest)
        half = len(longest) // 2
        parts += [longest[:half], longest[half:]]
    return frozenset(sorted(parts, key=len, reverse=True)[: edits + 1])


# --- Hyperscan expressions --------------------------------------------------------------

_SURROGATES = ((0xD800, 0xDFFF),)


def _hs_char(c: str) -> str:
    return c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}"


_ANY = r"[\s\S]"
_ANY_RUN = f"(?:{_ANY}){{0,}}"  # what ``_hs`` makes of ".*"


def _hs_set(ranges: safety.Ranges) -> str:
    if not ranges or ranges == safety.ALL:
        return _ANY  # (an empty set never matches; anything is a superset)
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _hs_char(chr(ranges[0][0]))
    out = []
    for a, b in ranges:
        for lo, hi in safety.complement(_SURROGATES, a, b):
            out.append(_hs_char(chr(lo)) + (f"-{_hs_char(chr(hi))}" if hi > lo else ""))
    return "[" + "".join(out) + "]"


def hs_regex(node: safety.Node) -> str:
    """A Hyperscan expression matching everything ``node`` matches (and
    maybe more): assertions and lookarounds are dropped (but for a leading
    ``^`` and a final ``$``), classes widened to their ``upper`` sets (beyond ``_HS_WIDE``
    characters, to their ASCII part and every other character), repeats of
    more than ``_HS_REPEAT`` made unbounded; a run of any characters at
    either end dropped."""
    expr = _hs(node, top=True)
    # "^.*X" finds a text where "X" does, and so do "X.*" and "X.*$": the run
    # only makes Hyperscan follow every text to its start or its end (the
    # translation of a "^(?=.*X)" probe, or of "X.*" and "X.*$" endings). An
    # expression that is nothing but the run stays as it is.
    for lead in ("^" + _ANY_RUN, _ANY_RUN):
        while expr.startswith(lead) and len(expr) > len(lead):
            expr = expr[len(lead) :]
    for tail in (_ANY_RUN + "$", _ANY_RUN):
        while expr.endswith(tail) and len(expr) > len(tail):
            expr = expr[: -len(tail)]
    return expr


def _hs(node: safety.Node, top: bool = False) -> str:
    match node:
        case safety.CharSet(_, upper, _):
            if safety.size(upper) > _HS_WIDE:
                ascii_ = [(a, min(b, 127)) for a, b in upper if a < 128]
                upper = safety.merge([*ascii_, (128, safety.MAX_CODE)])
            return _hs_set(upper)
        case safety.Assert() | safety.Look():
            return ""
        case safety.Seq(items):
            # Only for the whole expression: inside a repeat or a longer
            # sequence a lookaround's text is not consumed, so putting it in
            # place of its sequence would demand text the regex does not
            # ("aa(?:a?(?=a)){2}" matches "aaa").
            chosen = _probed_look(items) if top else None
            if chosen is not None:
                return _hs(chosen)
            anchor = top and items[0] in (safety.Assert("^"), safety.Assert("\\A"))
            # A regex that must end at the end of the text ("... mum x$"): so
            # must its probe, which spares the many texts that merely hold the
            # word. Hyperscan's "$" also matches before a final newline, as
            # `regex`'s does (and more than "\\Z").
            end = top and items[-1] in (safety.Assert("$"), safety.Assert("\\Z"))
            return "^" * anchor + "".join(_hs(n) for n in items) + "$" * end
        case safety.Alt(branches):
            return "(?:" + "|".join(_hs(n) for n in branches) + ")"
        case safety.Repeat(body, lo, hi):
            inner = _hs(body)
            if not inner or safety.max_width(body) == 0:
                return ""
            if hi is None or hi > _HS_REPEAT:
                lo, hi = min(lo, _HS_REPEAT), None
            bounds = f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
            return f"(?:{inner}){bounds}"


def _probed_look(items: tuple[safety.Node, ...]) -> safety.Node | None:
    """Of a whole regex's top-level sequence, the positive lookaround body
    its probe stands for, or None for the sequence itself.

    A text that matches also matches each positive lookaround's body
    somewhere: the probe is whichever part has the best literals (as in
    "^(?=.*\\b(photos?|videos?)\\b).*\\b(or|ou)\\b", the lookahead). Choosing
    costs a literal analysis of the whole subtree: only when there is a
    choice (nested sequences would make it quadratic)."""
    looks = [n.body for n in items if isinstance(n, safety.Look) and not n.negative]
    if not looks:
        return None
    rest = safety.Seq(tuple(n for n in items if not isinstance(n, safety.Look)))
    best = max([rest, *looks], key=lambda n: _quality(_best_keys(n)))
    return None if best is rest else best


def probed_look(root: safety.Node) -> int | None:
    """Which of a regex's top-level positive lookaheads its Hyperscan probe
    stands for, counted among them; None when the probe is the regex itself.
    The other parts are the ones a confirmation should test first: the
    probe's part is the one a candidate surely has."""
    if not isinstance(root, safety.Seq):
        return None
    chosen = _probed_look(root.items)
    if chosen is None:
        return None
    looks = [n.body for n in root.items if isinstance(n, safety.Look) and not n.negative]
    return next(i for i, body in enumerate(looks) if body is chosen)


def hs_literal(literal: str) -> str:
    """``literal`` as an exact Hyperscan literal. A phrase's word boundaries
    are left to confirmation (in Hyperscan they cost a hundred times the
    compile time), and its ``\\s+`` becomes one space: the finder scans only
    texts whose whitespace is single spaces (see ``_Hyperscan.candidates``)."""
    return "".join(map(_hs_char, literal))
