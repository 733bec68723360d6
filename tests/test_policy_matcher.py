"""The matcher: rule hits and their spans in the original text, identical
from both backends."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatguard.policy.matcher import (
    MAX_CACHED_DATABASES,
    Matcher,
    RuleHit,
    build_matcher,
    exact_hyperscan,
    exact_library,
)
from chatguard.policy.model import Pattern, PatternKind, Rule, Signal
from chatguard.policy.normalise import Normalised, normalise
from chatguard.policy.rules import literal_pattern, load_policy, regex_pattern

BACKENDS = ["hyperscan", "fallback"]


def pattern(spec: str) -> Pattern:
    """``phrase:add me``, ``word:snap``, ``fuzzy1:snapchat``, ``regex:\\bx\\b``."""
    kind, _, text = spec.partition(":")
    if kind == "regex":
        return regex_pattern(text)
    if kind.startswith("fuzzy"):
        kind_ = PatternKind.PHRASE if " " in text else PatternKind.WORD
        return literal_pattern(text, kind_, fuzzy=int(kind[5:]))
    return literal_pattern(text, PatternKind(kind))


def rule(
    rule_id: str, *specs: str, unless: Sequence[str] = (), signal_unless: Sequence[str] = ()
) -> Rule:
    return Rule(
        id=rule_id,
        description=rule_id,
        signal=Signal.ISOLATION,
        languages=frozenset({"en"}),
        patterns=tuple(map(pattern, specs)),
        unless=tuple(map(pattern, unless)),
        signal_unless=tuple(map(pattern, signal_unless)),
    )


def matched(m: Matcher, message: str) -> list[tuple[str, list[str]]]:
    """(rule id, matched original substrings) for each hit."""
    return [(h.rule.id, [message[a:b] for a, b in h.spans]) for h in m.scan(normalise(message))]


def raw(hits: list[RuleHit]) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
    return [(h.rule.id, h.spans) for h in hits]


CASES = [
    # (patterns, message, expected matched substrings; [] = no hit)
    (["phrase:add me on snap"], "add me on snap", ["add me on snap"]),
    (["phrase:add me on snap"], "pls ADD   ME on SNAP!!!", ["ADD   ME on SNAP"]),
    (["phrase:add me on snap"], "аdd me on ѕnаp", ["аdd me on ѕnаp"]),  # Cyrillic а, ѕ
    (["phrase:add me on snap"], "add me on s.n.a.p now", ["add me on s.n.a.p"]),
    (["phrase:add me on snap"], "add me on snapchat", []),
    (["word:snap"], "SNAP!!!", ["SNAP"]),
    (["word:snap"], "oh snap, my snapshot", ["snap"]),
    (["word:snap"], "snapshot", []),
    (["word:asl"], "what a hassle", []),
    (["word:asl"], "asl?", ["asl"]),
    (["word:snap"], "snap_chat", []),  # "_" is a word character
    (["word:snap"], "snap snap", ["snap", "snap"]),
    (["phrase:Zdjęcie"], "Wyślij ZDJĘCIE", ["ZDJĘCIE"]),
    (["phrase:Zdjęcie"], "wyślij zdjecie", ["zdjecie"]),
    (["phrase:pleeeease"], "pleeeeeeease", ["pleeeeeeease"]),
    (["phrase:pleeeease"], "please", []),
    (["phrase:18+"], "are you 18+?", ["18+"]),
    (["phrase:привет как дела"], "Привет  как дела?", ["Привет  как дела"]),
    (["phrase:📸"], "send 📸 pls", ["📸"]),
    (["phrase:send pics"], "s3nd p1cs", ["s3nd p1cs"]),
    (["fuzzy1:snapchat"], "my snapchatt is", ["snapchatt"]),
    (["fuzzy1:snapchat"], "my snapchap is", ["snapchap"]),
    (["fuzzy1:snapchat"], "snapcht?", ["snapcht"]),
    (["fuzzy1:snapchat"], "snap chat", ["snap chat"]),
    (["fuzzy1:snapchat"], "snachpat", []),  # two edits
    (["fuzzy1:snapchat"], "snapжchat", ["snapжchat"]),  # a non-ASCII insertion
    (["fuzzy2:snapchat"], "snachpat", ["snachpat"]),
    (["fuzzy1:telegram"], "telegrаm", ["telegrаm"]),
    (["regex:\\b(add|text) me on (snap(chat)?|kik)\\b"], "text me on kik", ["text me on kik"]),
    (["regex:\\bi'?m (1[0-7]|[89])\\b"], "Im 13 lol", ["Im 13"]),
    (["regex:\\b\\d{3}-\\d{4}\\b"], "call 555-1234", ["555-1234"]),
    (["regex:\\b\\w+@\\w+\\.com\\b"], "mail me at x@y.com", ["x@y.com"]),
    (["phrase:how old", "phrase:are you"], "how old are you", ["how old", "are you"]),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(("specs", "message", "expected"), CASES)
def test_cases(backend: str, specs: list[str], message: str, expected: list[str]) -> None:
    m = build_matcher([rule("r", *specs)], backend=backend)
    assert m.backend == backend
    assert matched(m, message) == ([("r", expected)] if expected else [])


def test_unless_and_rule_order(backend: str) -> None:
    rules = [
        rule("b.snap", "fuzzy1:snapchat", unless=["phrase:deleted snapchat"]),
        rule("a.move", "phrase:add me", "word:snapchat"),
        rule("c.none", "word:kik"),
    ]
    m = build_matcher(rules, backend=backend)
    assert matched(m, "add me on snapchat") == [
        ("b.snap", ["snapchat"]),
        ("a.move", ["add me", "snapchat"]),
    ]
    assert matched(m, "I deleted snapchat, add me") == [("a.move", ["snapchat", "add me"])]
    assert matched(m, "") == []
    assert matched(m, "   \u200b ") == []


def test_signal_unless_cancels_the_rule_and_says_what_is_only_talked_about(
    backend: str,
) -> None:
    rules = [
        rule("a.snap", "word:snapchat", unless=["phrase:deleted"]),
        rule("b.move", "phrase:add me", signal_unless=["phrase:if someone"]),
    ]
    m = build_matcher(rules, backend=backend)
    assert matched(m, "if someone says add me, block") == []
    assert matched(m, "i deleted snapchat, add me") == [("b.move", ["add me"])]
    # Only signal_unless guards speak for the whole signal (the signal model).
    signals = [Signal.ISOLATION, Signal.SECRECY]
    assert m.talked_about(normalise("if someone says add me, block"), signals) == {Signal.ISOLATION}
    assert m.talked_about(normalise("i deleted snapchat"), signals) == set()
    assert m.talked_about(normalise("add me"), signals) == set()


def test_talked_about_right_after_a_scan_reuses_it_and_answers_the_same(backend: str) -> None:
    rules = [rule("b.move", "phrase:add me", signal_unless=["phrase:if someone"])]
    m = build_matcher(rules, backend=backend)
    guarded = normalise("if someone says add me, block")
    m.scan(guarded)  # what the engine does first
    assert m.talked_about(guarded, [Signal.ISOLATION]) == {Signal.ISOLATION}
    # A scan of another text is not taken for this one, nor this one for it;
    # the texts whose white space is not single spaces (another finder) too.
    m.scan(normalise("add me"))
    assert m.talked_about(guarded, [Signal.ISOLATION]) == {Signal.ISOLATION}
    assert m.talked_about(normalise("add me"), [Signal.ISOLATION]) == set()
    loose = Normalised(
        "if  someone says add me", "if  someone says add me", "if  someone says add me"
    )
    m.scan(loose)
    assert m.talked_about(loose, [Signal.ISOLATION]) == {Signal.ISOLATION}


def test_text_with_other_white_space(backend: str) -> None:
    # Not what the normaliser makes, but scanned right all the same.
    rules = [rule("a", "phrase:add me on snap", "regex:\\bme on\\b"), rule("b", "word:kik")]
    m = build_matcher(rules, backend=backend)
    for text in ["add  me on\u00a0snap", "add me\ton snap\x00", "add me on snap \ue000"]:
        norm = Normalised(text, text, text)
        assert [h.rule.id for h in m.scan(norm)] == ["a"], repr(text)


def test_patterns_shared_between_rules_are_one_unit(backend: str) -> None:
    rules = [rule("a", "word:snap"), rule("b", "word:snap", "word:kik")]
    m = build_matcher(rules, backend=backend)
    assert m.units == 2
    assert matched(m, "snap kik") == [("a", ["snap"]), ("b", ["snap", "kik"])]


def test_timeout_counts_as_no_match(backend: str) -> None:
    # Refused by the loader. The probe keeps the "$" and drops the
    # lookbehind, so it finds a text ending in a word, on which the regex
    # fails only after trying every way to split the words.
    slow = Pattern(PatternKind.REGEX, "slow", r"(\w+\s?)+(?<!a)$")
    rules = [Rule("slow", "d", Signal.SEXUAL, frozenset({"en"}), (slow,)), rule("ok", "word:aa")]
    m = build_matcher(rules, backend=backend, timeout=0.005)
    assert matched(m, "aa " * 1000 + "a") == [("ok", ["aa"] * 1000)]
    assert m.timeouts == 1


def test_the_timeout_still_fires_where_the_work_bound_allows_a_long_run(backend: str) -> None:
    # Sequential repeats: quick on a chat message, slow on a long text (about
    # 0.1 s for 4,000 characters). Built past the loader, which would refuse it.
    source = r"[ab]{0,20}[ab]{0,20}[ab]{0,20}[cd]"
    slow = Pattern(PatternKind.REGEX, "slow", source)
    rules = [Rule("slow", "d", Signal.SEXUAL, frozenset({"en"}), (slow,)), rule("ok", "word:ab")]
    m = build_matcher(rules, backend=backend, timeout=0.005)
    (unit,) = [u for u in m._units if u.pattern is slow]
    assert unit.untimed(8, m.timeout)
    assert not unit.untimed(4000, m.timeout)
    assert matched(m, "abababac") == [("slow", ["abababac"])]
    assert m.timeouts == 0
    assert matched(m, "ab " + "ab" * 2000 + " d") == [("ok", ["ab"])]
    assert m.timeouts == 1
    # What the bound decided is kept per length, for the same timeout.
    assert unit.untimed(8, m.timeout)
    assert not unit.untimed(5000, m.timeout)
    assert not unit.untimed(8, 1e-9)


def test_a_fuzzy_unit_always_runs_with_the_timeout(backend: str) -> None:
    m = build_matcher([rule("f", "fuzzy1:snapchat")], backend=backend)
    (unit,) = m._units
    assert unit.tree() is None
    assert not unit.untimed(1, m.timeout)
    assert matched(m, "add me on snpchat") == [("f", ["snpchat"])]


def test_expressions_outside_the_prefilters(backend: str) -> None:
    # Built by hand, past the loader: one the parser refuses, one Hyperscan
    # refuses (it can match the empty string). Both are run on every message.
    odd = [
        Pattern(PatternKind.REGEX, "a", r"(?i)\bSNAP\b"),
        Pattern(PatternKind.REGEX, "b", r"x?"),
    ]
    rules = [Rule("odd", "d", Signal.SEXUAL, frozenset({"en"}), tuple(odd))]
    m = build_matcher(rules, backend=backend)
    assert matched(m, "oh snap") == [("odd", ["snap"])]
    assert matched(m, "a x b") == [("odd", ["x"])]
    assert matched(m, "nothing here") == []
    if backend == "hyperscan":
        assert m.compiles > 1  # the first database was refused, then rebuilt


def test_hyperscan_cache(tmp_path: Path) -> None:
    rules = [rule("a", "phrase:add me on snap", "fuzzy1:snapchat", "regex:\\bkik\\b")]
    first = build_matcher(rules, backend="hyperscan", cache_dir=tmp_path)
    assert (first.cache_hit, first.compiles) == (False, 1)
    (cached,) = tmp_path.glob("hs-*.db")

    second = build_matcher(rules, backend="hyperscan", cache_dir=tmp_path)
    assert (second.cache_hit, second.compiles) == (True, 0)
    for message in ["add me on snap", "snapchatt", "kik me", "nope"]:
        assert raw(second.scan(normalise(message))) == raw(first.scan(normalise(message)))

    other = build_matcher([rule("a", "word:kik")], backend="hyperscan", cache_dir=tmp_path)
    assert not other.cache_hit
    assert len(list(tmp_path.glob("hs-*.db"))) == 2

    cached.write_bytes(cached.read_bytes()[:40])  # torn: compiled again
    again = build_matcher(rules, backend="hyperscan", cache_dir=tmp_path)
    assert (again.cache_hit, again.compiles) == (False, 1)
    assert matched(again, "add me on snap") == [("a", ["add me on snap"])]


def test_the_cache_keeps_the_databases_used_last(tmp_path: Path) -> None:
    """Every edit of a pack is a new database (about 30 MB for the default
    pack): the directory keeps the MAX_CACHED_DATABASES used last."""
    assert MAX_CACHED_DATABASES == 4
    packs = [[rule("a", f"word:{w}")] for w in ("snap", "kik", "tiktok", "discord", "steam")]
    for n, rules in enumerate(packs[:4]):
        before = set(tmp_path.glob("hs-*.db"))
        build_matcher(rules, backend="hyperscan", cache_dir=tmp_path)
        (made,) = set(tmp_path.glob("hs-*.db")) - before
        os.utime(made, (n + 1, n + 1))  # made in this order, long ago
    first = {p.stat().st_mtime: p for p in tmp_path.glob("hs-*.db")}
    assert sorted(first) == [1, 2, 3, 4]

    again = build_matcher(packs[0], backend="hyperscan", cache_dir=tmp_path)  # used again
    assert again.cache_hit
    build_matcher(packs[4], backend="hyperscan", cache_dir=tmp_path)  # a fifth
    kept = set(tmp_path.glob("hs-*.db"))
    assert len(kept) == 4
    assert first[2] not in kept  # the one least recently used
    assert {first[1], first[3], first[4]} < kept


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown matcher backend"):
        build_matcher([], backend="re2")


# --- Both backends agree ------------------------------------------------------------

PACK = [
    rule("move", "phrase:add me on snap", "regex:\\b(add|text|hit) me (up )?on (kik|insta)\\b"),
    rule("apps", "fuzzy1:snapchat", "fuzzy1:whatsapp", "word:kik", unless=["phrase:deleted"]),
    rule("age", "phrase:how old are you", "word:asl", "regex:\\bhow old r u\\b"),
    rule("minor", "regex:\\bi'?m (1[0-7]|[89])\\b", "regex:\\b[5-8]th grade\\b"),
    rule("secret", "phrase:our secret", "phrase:don't tell", "fuzzy2:nobody needs to know"),
    rule("pics", "regex:\\bsend (?:\\w+ ){0,2}pics?\\b", "phrase:📸", "phrase:s3nd p1cs"),
    rule("pl", "phrase:wyślij zdjęcie", "word:zdjęcia", "fuzzy1:rodzicami"),
    rule("ru", "phrase:сколько тебе лет", "fuzzy1:фотографию", "word:одна"),
    rule("phone", "regex:\\b\\d{3}[-. ]?\\d{4}\\b", "regex:[^\\w\\s]{2}\\w"),
    rule("classes", "regex:\\b[a-c]\\w{2,4}z\\b", "regex:(?<=my )(?:snap|kik)(?!\\w)"),
    rule("pleease", "phrase:pleeease", "phrase:18+", "regex:\\b(?:ab|cd){2,}\\b"),
]
VOCABULARY = sorted(
    {w for r in PACK for p in (*r.patterns, *r.unless) for w in (p.literal or "").split()}
    | {"add", "me", "on", "up", "kik", "insta", "how", "old", "r", "u", "im", "13", "9", "8th"}
    | {"grade", "send", "pics", "pic", "555-1234", "5551234", "my", "snap", "x@y.com", "deleted"}
    | {"abcz", "bxyz", "abab", "cdcd", "pleeeease", "18+", "hello", "there", "lol", "ok"}
)
NOISE = ["a", "the", "ssnapchat", "snapchatt", "whatsap", "zdjecie", "Фотографию", "🤫", "?"]
SEPARATORS = [" ", "  ", ", ", ".", "!!! ", "\u00a0", " - ", "\u200b", "_", "'"]
LOOKALIKES = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "s": "ѕ", "c": "с"})


@st.composite
def messages(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(VOCABULARY + NOISE), min_size=1, max_size=8))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)))
    text = "".join(w + s for w, s in zip(words, seps, strict=True))
    form = draw(st.sampled_from(["plain", "upper", "lookalike", "split", "repeat", "noise"]))
    if form == "upper":
        text = text.upper()
    elif form == "lookalike":
        text = text.translate(LOOKALIKES)
    elif form == "split":
        text = ".".join(text)
    elif form == "repeat":
        text = regex.sub(r"([a-z])", r"\1\1\1", text, count=2)
    elif form == "noise":
        text = draw(st.text(max_size=8)) + text + draw(st.text(max_size=8))
    return text


@pytest.fixture(scope="module")
def pair() -> tuple[Matcher, Matcher]:
    return build_matcher(PACK, backend="hyperscan"), build_matcher(PACK, backend="fallback")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages())
def test_backends_agree(pair: tuple[Matcher, Matcher], message: str) -> None:
    fast, fallback = pair
    norm = normalise(message)
    assert raw(fast.scan(norm)) == raw(fallback.scan(norm))


def test_backends_agree_on_vocabulary(pair: tuple[Matcher, Matcher]) -> None:
    fast, fallback = pair
    found = 0
    for r in PACK:
        for message in (*r.patterns, *r.unless):
            norm = normalise(message.source)
            hits = raw(fast.scan(norm))
            assert hits == raw(fallback.scan(norm))
            found += bool(hits)
    assert found >= 25


def synthetic_pack(n: int, seed: int = 7) -> tuple[list[Rule], list[str]]:
    """``n`` rules of random phrases, words, fuzzy words and regexes over a
    small vocabulary, and messages made of the same words."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "ję", "щу"]
    words = sorted({"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(400)})
    rules = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.5:
            spec = "phrase:" + " ".join(rng.choices(words, k=rng.randint(1, 3)))
        elif kind < 0.7:
            spec = "word:" + rng.choice(words)
        elif kind < 0.85:
            spec = "fuzzy1:" + rng.choice([w for w in words if len(w) >= 6])
        else:
            a, b = (normalise(w).folded for w in rng.sample(words, 2))
            spec = rf"regex:\b{a} (?:\w+ ){{0,2}}{b}\b"
        unless = ["word:" + rng.choice(words)] if rng.random() < 0.1 else []
        rules.append(rule(f"r{i}", spec, unless=unless))
    messages = [
        " ".join(rng.choices([*words, "the", "and", "you"], k=rng.randint(1, 12)))
        for _ in range(400)
    ]
    return rules, messages


def test_backends_agree_on_1000_rules(tmp_path: Path) -> None:
    rules, messages = synthetic_pack(1000)
    fast = build_matcher(rules, backend="hyperscan", cache_dir=tmp_path)
    fallback = build_matcher(rules, backend="fallback")
    hits = 0
    for message in messages:
        norm = normalise(message)
        got = raw(fast.scan(norm))
        assert got == raw(fallback.scan(norm)), message
        hits += len(got)
    assert hits > 100


SHIPPED = Path(__file__).resolve().parent.parent / "policies"
EVAL = Path(__file__).resolve().parent / "eval"


@pytest.mark.parametrize(
    ("version", "exact"),
    [
        ("0.6.0 Version: 5.4.2 Features: AVX2 Mode: BLOCK", True),
        ("0.4.0 Version: 5.4.0 Features: AVX2 Mode: BLOCK", True),
        ("0.9.1 Version: 5.4.12 Features:  Mode: BLOCK", False),
        ("0.7.8 Version: 5.4.11 Features:  Mode: BLOCK", False),
        ("? garbled", False),
    ],
)
def test_only_intel_hyperscan_counts_as_exact(version: str, exact: bool) -> None:
    assert exact_library(version) is exact


def test_auto_takes_hyperscan_only_when_it_is_exact() -> None:
    rules = [rule("r", "word:snap")]
    expected = "hyperscan" if exact_hyperscan() else "fallback"
    assert build_matcher(rules, backend="auto").backend == expected
    assert build_matcher(rules, backend="fallback").backend == "fallback"


@pytest.mark.xfail(
    not exact_hyperscan(),
    reason="no hyperscan here, or a package that bundles Vectorscan, which misses some matches",
)
@pytest.mark.parametrize("half", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_backends_agree_on_the_shipped_pack_over_the_evaluation_set(
    pack_cache: Path, half: int
) -> None:
    """Every example of the shipped pack and every message of every other file
    of ``tests/eval`` (the rest with ``-m slow``) finds the same rules and
    spans with Hyperscan as with the fallback.
    Vectorscan 5.4.12 (hyperscan 0.7 and later) failed this: it missed "im in
    9th", "she doesnt know" and "o el grupo recibe las viejas" in the pack's
    expressions; Intel Hyperscan 5.4.2 (hyperscan 0.6) finds them."""
    rules = load_policy(SHIPPED, cache_dir=pack_cache).rules
    fast = build_matcher(rules, backend="hyperscan", cache_dir=pack_cache)
    fallback = build_matcher(rules, backend="fallback")
    texts = [e for r in rules for e in (*r.examples_match, *r.examples_no_match)]
    for path in sorted(EVAL.glob("*.jsonl"))[half::2]:
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]
    assert len(texts) > 20_000
    differ = [t for t in texts if raw(fast.scan(normalise(t))) != raw(fallback.scan(normalise(t)))]
    assert differ == []
