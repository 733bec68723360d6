"""The prefilter translations: literals every match holds, and Hyperscan
expressions that match a superset of what a regex matches (checked on
random regexes with a real Hyperscan database)."""

from __future__ import annotations

import hyperscan
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatguard.policy import safety
from chatguard.policy.prefilter import fuzzy_pieces, hs_regex, probed_look, regex_keys
from tests.support.regexes import regexes


def test_hyperscan_translation() -> None:
    def hs(source: str) -> str:
        return hs_regex(safety.parse(source))

    # A lookahead with better literals than the rest is what gets probed.
    assert hs(r"^(?=.*\bphotos?\b).*\b(or|ou)\b") == r"photo(?:s){0,1}"
    # A run of any characters at either end finds nothing more.
    assert hs(r"^.*\bpay\b.*") == "pay"
    assert hs(r"\bpay\b.*$") == "pay"
    assert hs(r"^.*\bpay\b.*\bnow\b") == r"pay(?:[\s\S]){0,}now"
    assert hs(r"^ab\b") == "^ab"  # a leading anchor stays; \b goes to confirmation
    assert hs(r"\d") == r"[0-9\x{80}-\x{d7ff}\x{e000}-\x{10ffff}]"  # exact on ASCII
    assert hs(r"a.{0,40}b") == r"a(?:[\s\S]){0,}b"  # counted repeats cost compile time
    assert hs(r"snap(chat)?") == "snap(?:chat){0,1}"
    # A regex that ends at the end of the text: so does its probe. Only the
    # whole expression's "$": inside an alternation it binds one branch.
    assert hs(r"\bmum x?$") == "mum\\x{20}(?:x){0,1}$"
    assert hs(r"\bmum\Z") == "mum$"
    assert not hs(r"(?:mum$|dad)").endswith("$")
    assert not hs(r"^(?=.*\bphotos?\b).*\b(or|ou)$").endswith("$")  # the lookahead is probed


def test_which_lookahead_is_probed() -> None:
    def probed(source: str) -> int | None:
        return probed_look(safety.parse(source))

    assert probed(r"^(?=.*\bor\b)(?=.*\bphotos?\b).*\bpay\b") == 1
    assert probed(r"^(?!.*\bhomework\b)(?=.*\bphotos?\b).*\bor\b") == 0  # among positive ones
    assert probed(r"^(?=.*\bor\b).*\bphotos\b") is None  # the rest has the better literals
    assert probed(r"\bphotos\b") is None


def test_fuzzy_pieces() -> None:
    assert fuzzy_pieces("snapchat", 1) == {"snap", "chat"}
    assert fuzzy_pieces("add me on snapchat", 1) == {"snapchat", "add"}
    assert len(fuzzy_pieces("whatsapp", 3)) == 4


def test_regex_keys() -> None:
    keys = regex_keys(safety.parse(r"\b(add|text) me (up )?on (snap(chat)?|kik)\b"))
    assert keys is not None
    assert min(map(len, keys)) >= 3
    assert regex_keys(safety.parse(r"\bsnap(chat)?\b")) == {"snap", "snapchat"}
    assert regex_keys(safety.parse(r"\w+@\w+")) == {"@"}
    assert regex_keys(safety.parse(r"\b1[0-7]\b")) == {f"1{d}" for d in range(8)}
    assert regex_keys(safety.parse(r"^(?=.*\bpics?\b).*\bor\b")) == {"pic", "pics"}
    assert regex_keys(safety.parse(r"\w+\s\w+")) is None


# --- The Hyperscan translation never misses ---------------------------------------------

ATOMS = ["a", "b", "c", "é", " ", "-", "ж", "[ab]", "[^a]", r"\w", r"\d", r"\s", r"\W", "."]
ATOMS += [r"\b", r"\B", "(?=a)", "(?<!b)", "[a-cж]", r"[\w-]", r"[^\s\d]", r"\p{L}", "^", "$"]


def collect(probe: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    hits.append(probe)


@st.composite
def likely_match(draw: st.DrawFn, node: safety.Node) -> str:
    """A text built along ``node`` (assertions aside, it matches), with
    characters from anywhere in each class's possible set."""
    match node:
        case safety.CharSet(lower, upper, _):
            ranges = draw(st.sampled_from([r for r in (lower, upper) if r]))
            a, b = draw(st.sampled_from(ranges))
            return chr(
                draw(st.integers(a, min(b, 0x2FFFF)).filter(lambda c: c < 0xD800 or c > 0xDFFF))
            )
        case safety.Seq(items):
            return "".join(draw(likely_match(n)) for n in items)
        case safety.Alt(branches):
            return draw(likely_match(draw(st.sampled_from(branches))))
        case safety.Repeat(body, lo, hi):
            n = draw(st.integers(lo, min(hi if hi is not None else lo + 2, lo + 2)))
            return "".join(draw(likely_match(body)) for _ in range(n))
        case _:
            return draw(st.sampled_from(["", " ", "a", "b"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=regexes(ATOMS), data=st.data())
def test_prefilters_are_supersets(source: str, data: st.DataObject) -> None:
    root = safety.parse(source)
    if safety.min_width(root) == 0:
        return
    texts = data.draw(st.lists(st.text("abcé -жx1_!", max_size=12), max_size=4))
    texts += [data.draw(likely_match(root)) for _ in range(4)]
    compiled = regex.compile(source, safety.FLAGS)
    db = hyperscan.Database()
    flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH
    db.compile(expressions=[hs_regex(root).encode()], flags=flags)
    keys = regex_keys(root)
    for text in texts:
        try:
            if not any(m.end() > m.start() for m in compiled.finditer(text, timeout=0.1)):
                continue
        except TimeoutError:  # these regexes skip the safety check: some are slow
            continue
        hits: list[int] = []
        db.scan(text.encode(), match_event_handler=collect, context=hits)
        assert hits, (source, hs_regex(root), text)
        assert keys is None or any(k in text for k in keys), (source, keys, text)
