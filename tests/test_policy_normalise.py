"""Tests for ``chatguard.policy.normalise``.

Tables first: one row per evasion technique (input, normalised text, the
techniques recorded), one per offset mapping (the word a rule would match and
the exact text the user typed for it), and ordinary chat that must stay
quiet. Then properties over arbitrary text, surrogates included.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.policy import normalise as normalise_module
from chatguard.policy.normalise import DEFAULT_MAX_CHARS, Evasion, Feature, Normalised, normalise

E = Evasion

# --- Techniques ----------------------------------------------------------------------

TECHNIQUES: list[tuple[str, str, set[Evasion]]] = [
    # leetspeak
    ("s3nd p1cs", "send pics", {E.LEET}),
    ("n00dz", "noodz", {E.LEET}),
    ("h0t", "hot", {E.LEET}),
    ("pu$$y", "pussy", {E.LEET}),
    ("$ex", "sex", {E.LEET}),
    ("d!ck", "dick", {E.LEET}),
    ("h3ll0!", "hello!", {E.LEET}),
    ("5h1t", "shit", {E.LEET}),
    ("s3nd m3 a p1c", "send me a pic", {E.LEET}),
    ("@h4ck3r hi", "@hacker hi", {E.LEET}),
    # a clear leet word reads "4" at its edge too; "b4" without leet inside stays
    ("wyjdz s4m4, m4mie ni3 m0w b4 23", "wyjdz sama, mamie nie mow b4 23", {E.LEET}),
    # leet at both edges of two or more letters reads both; "1st" and "4ever" keep theirs
    ("b1ld v0n d1r 0hn3 sh1rt", "bild von dir ohne shirt", {E.LEET}),
    ("s3nd m3 1st pl4c3 4ever", "send me 1st place 4ever", {E.LEET}),
    # split words
    ("s.n.a.p", "snap", {E.SPLIT}),
    ("s n a p", "snap", {E.SPLIT}),
    ("s_n_a_p", "snap", {E.SPLIT}),
    ("s-n-a-p", "snap", {E.SPLIT}),
    ("s*n*a*p", "snap", {E.SPLIT}),
    ("s/n/a/p", "snap", {E.SPLIT}),
    ("s . n . a . p", "snap", {E.SPLIT}),
    ("add me on s n a p c h a t", "add me on snapchat", {E.SPLIT}),
    # a wider gap ends one spelled-out word and starts the next
    ("c o m e  a l o n e", "come alone", {E.SPLIT}),
    ("d o n t \t t e l l   h e r yet", "dont tell her yet", {E.SPLIT}),
    ("ok  i  am  here", "ok i am here", set()),
    # once a message spells words that way, every spaced run between its gaps
    # is a word: two letters, common letters, digits
    ("s e n d  5 0  q u i d  o r  i t  g o e s  i n", "send 50 quid or it goes in", {E.SPLIT}),
    ("p a y p a l  m y  b r o  2 4  h r s", "paypal my bro 24 hrs", {E.SPLIT}),
    ("m a i l l o t  d e  b a i n, ok", "maillot de bain, ok", {E.SPLIT}),
    ("i  s a w  a  b  c  on tv", "i saw a b c on tv", {E.SPLIT}),
    ("s 3 x", "sex", {E.SPLIT, E.LEET}),
    ("p.1.c.s", "pics", {E.SPLIT, E.LEET}),
    # repeated letters
    ("sooooo cute", "soo cute", {E.REPEAT}),
    ("pleeease", "pleease", {E.REPEAT}),
    ("n000000dz", "noodz", {E.LEET, E.REPEAT}),
    # invisible characters
    ("s\u200bex", "sex", {E.INVISIBLE}),
    ("sn\u200cap", "snap", {E.INVISIBLE}),
    ("sn\u2060ap", "snap", {E.INVISIBLE}),
    ("sn\u00adap", "snap", {E.INVISIBLE}),
    ("sn\ufeffap", "snap", {E.INVISIBLE}),
    ("se\ufe0fx", "sex", {E.INVISIBLE}),
    ("555\u200b1234", "5551234", {E.INVISIBLE}),
    ("txet\u202e", "txet", {E.INVISIBLE}),
    ("\u202dhi there", "hi there", {E.INVISIBLE}),
    ("sn\u2066ap\u2069", "snap", {E.INVISIBLE}),
    ("hi\U000e0073\U000e0065\U000e0078", "hi", {E.INVISIBLE}),
    # compatibility forms
    ("ｓｎａｐ", "snap", {E.COMPAT}),
    ("𝐬𝐧𝐚𝐩", "snap", {E.COMPAT}),
    ("𝓼𝓷𝓪𝓹", "snap", {E.COMPAT}),
    ("ⓢⓝⓐⓟ", "snap", {E.COMPAT}),
    ("ＳＥＮＤ ｐｉｃｓ", "send pics", {E.COMPAT}),
    ("I'm １３", "i'm 13", {E.COMPAT}),
    # look-alike letters
    ("wanna have ѕех?", "wanna have sex?", {E.HOMOGLYPH}),
    ("ЅЕХ", "sex", {E.HOMOGLYPH}),
    ("p\u0430ssword", "password", {E.HOMOGLYPH, E.MIXED_SCRIPT}),
    ("sn\u03b1p", "snap", {E.HOMOGLYPH, E.MIXED_SCRIPT}),
    ("H\u041e\u0422", "hot", {E.HOMOGLYPH, E.MIXED_SCRIPT}),
    ("your \u0440\u0430rents", "your parents", {E.HOMOGLYPH, E.MIXED_SCRIPT}),
    ("send \u0440\u0456c\u0455", "send pics", {E.HOMOGLYPH, E.MIXED_SCRIPT}),
    ("send \u0440\u0456\u0441\u0455", "send pics", {E.HOMOGLYPH}),
    ("ꜱᴇɴᴅ ɴᴜᴅᴇꜱ", "send nudes", {E.HOMOGLYPH}),
    ("sexя", "sexя", {E.MIXED_SCRIPT}),
    # several at once
    ("ｓ３ｘ", "sex", {E.COMPAT, E.LEET}),
    ("s\u200b3\u200bx", "sex", {E.INVISIBLE, E.LEET}),
    ("ѕ е х", "sex", {E.HOMOGLYPH, E.SPLIT}),
]


@pytest.mark.parametrize(("raw", "text", "evasions"), TECHNIQUES)
def test_technique(raw: str, text: str, evasions: set[Evasion]) -> None:
    n = normalise(raw)
    assert n.text == text
    assert n.evasions == evasions


EMOJI: list[tuple[str, str]] = [
    ("send 📸", "send emoji_camera"),
    ("send📷now", "send emoji_camera now"),
    ("add my 👻", "add my emoji_ghost"),
    ("🍆💦", "emoji_eggplant emoji_droplets"),
    ("don't tell 🤫", "don't tell emoji_shush"),
    ("☎️ me", "emoji_phone me"),
    ("💰🏽 gift 🎁", "emoji_money gift emoji_gift"),
    ("one in ur 🩱 or 🩲", "one in ur emoji_bikini or emoji_bikini"),  # one word for swimwear
    ("w 🛏️ i bez 👕", "w emoji_bed i bez emoji_shirt"),  # clothes named by what is taken off
    ("cam on, 🚪🔒", "cam on, emoji_door emoji_lock"),  # a shut door, said in pictures
    # A meeting spelt in pictures, the variation selector after 🅿 and 🗣 dropped.
    (
        "🚗 at the 🅿️ behind 🏫 thurs. dont 🗣️",
        "emoji_car at the emoji_parking behind emoji_school thurs. dont emoji_speak",
    ),
]


@pytest.mark.parametrize(("raw", "text"), EMOJI)
def test_emoji_words_are_a_feature_not_evasion(raw: str, text: str) -> None:
    n = normalise(raw)
    assert n.text == text
    assert n.features == {Feature.EMOJI_WORD}
    assert n.evasions == set()


# --- Ordinary chat stays quiet ---------------------------------------------------------

ORDINARY: list[tuple[str, str]] = [
    ("I'm 13", "i'm 13"),
    ("I'm 13yo and in 8th grade", "i'm 13yo and in 8th grade"),
    ("call me at 555-1234", "call me at 555-1234"),
    ("see you at 2 pm, or 2pm, or 10:30", "see you at 2 pm, or 2pm, or 10:30"),
    ("can I borrow $20? or $5", "can i borrow $20? or $5"),
    ("$5off today", "$5off today"),
    ("gr8, c u l8r b4 the game 4ever", "gr8, c u l8r b4 the game 4ever"),
    ("mp3 ps5 covid19 1080p 4x4 1v1 h2o", "mp3 ps5 covid19 1080p 4x4 1v1 h2o"),
    ("x7k9p is my code", "x7k9p is my code"),
    ("m3 and b4", "m3 and b4"),
    ("my username is cool_gamer_2011", "my username is cool_gamer_2011"),
    ("mail me at j0hn.d03@example.com", "mail me at j0hn.d03@example.com"),
    ("https://www.youtube.com/watch?v=a1b3", "https://www.youtube.com/watch?v=a1b3"),
    ("www.site.com", "www.site.com"),
    ("hi!!! wow!!so", "hi!!! wow!!so"),
    ("good cool too hmm", "good cool too hmm"),
    ("options a, b, c or d", "options a, b, c or d"),
    ("u r a b", "u r a b"),
    ("x x x", "x x x"),
    ("e.g. a.m. i.e.", "e.g. a.m. i.e."),
    ("Cześć! Jak się masz? Wyślesz mi zdjęcie?", "cześć! jak się masz? wyślesz mi zdjęcie?"),
    ("Straße Größe Äpfel", "strasse grösse äpfel"),
    ("¿Cuántos años tienes?", "¿cuántos años tienes?"),
    ("Привет, как дела?", "привет, как дела?"),
    ("ок", "ок"),
    ("ok все", "ok все"),
    ("Привіт, як справи?", "привіт, як справи?"),
    ("Καλημέρα, τι κάνεις;", "καλημέρα, τι κάνεισ;"),
    ("ΟΚ", "οκ"),
    ("می\u200cخواهم", "میخواهم"),
    ("क्\u200dष", "क्ष"),
    ("ＯＫ 日本語です", "ok 日本語です"),
    ("™ №5 m² ½", "tm no5 m2 1⁄2"),
    ("wait… what\u00a0?", "wait... what ?"),
    ("\ufeffhello", "hello"),
    ("👩\u200d👩\u200d👧 family", "👩👩👧 family"),
    ("👨\u200d💻 coding", "👨💻 coding"),
    ("❤️\u200d🔥", "❤🔥"),
    ("👍🏽 ok", "👍 ok"),
    ("🏽", "🏽"),
    ("#️⃣ 1️⃣3️⃣", "# 13"),
    ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "🏴"),
    # NFKC turns compatibility jamo (ㅋ) into conjoining jamo; no evasion.
    ("haha 😂😂😂 哈哈哈哈 ㅋㅋㅋ", "haha 😂😂😂 哈哈哈哈 \u110f\u110f\u110f"),
    ("  lots   of\tspace\n\n", "lots of space"),
    ("a\x00b\x1bc", "a b c"),
]


@pytest.mark.parametrize(("raw", "text"), ORDINARY)
def test_ordinary_chat_is_not_evasion(raw: str, text: str) -> None:
    n = normalise(raw)
    assert n.text == text
    assert n.evasions == set()


def test_known_false_positives_are_documented() -> None:
    # Both are listed in the module docstring; rules must not treat them alone
    # as a signal.
    assert normalise("I a m 13").evasions == {E.SPLIT}
    assert normalise("sooo good").evasions == {E.REPEAT}


# --- Offsets ------------------------------------------------------------------------------

# (typed, a word of the normalised text, the exact original text behind it)
OFFSETS: list[tuple[str, str, str]] = [
    ("s.n.a.p me", "snap", "s.n.a.p"),
    ("add me on s . n . a . p", "snap", "s . n . a . p"),
    ("hey s\u200bex", "sex", "s\u200bex"),
    ("send 📸\ufe0f now", "emoji_camera", "📸\ufe0f"),
    ("sooooo cute", "soo", "sooooo"),
    ("so cuuuute", "cuute", "cuuuute"),
    ("ｓｎａｐ me", "snap", "ｓｎａｐ"),
    ("𝐬𝐧𝐚𝐩 me", "snap", "𝐬𝐧𝐚𝐩"),
    ("Größe", "grösse", "Größe"),
    ("my  n00dz!!", "noodz", "n00dz"),
    ("wanna have ѕех?", "sex", "ѕех"),
    ("s 3 x pls", "sex", "s 3 x"),
    ("e\u0301x", "éx", "e\u0301x"),
    ("1\ufe0f\u20e33\ufe0f\u20e3 yo", "13", "1\ufe0f\u20e33\ufe0f\u20e3"),
    ("\u200bhi", "hi", "hi"),
    ("ﬁne", "fine", "ﬁne"),
    ("  call\tme  ", "call", "call"),
    ("  call\tme  ", "me", "me"),
    ("ok\u202e sex", "sex", "sex"),
    ("p\u0430ssword", "password", "p\u0430ssword"),
]


@pytest.mark.parametrize(("raw", "word", "typed"), OFFSETS)
def test_word_maps_back_to_what_was_typed(raw: str, word: str, typed: str) -> None:
    n = normalise(raw)
    start = n.text.index(word)
    a, b = n.span_to_original(start, start + len(word))
    assert raw[a:b] == typed
    assert n.offsets[start] == a


def test_words_spelled_out_with_a_wider_gap_map_to_their_letters() -> None:
    text = "c o m e  a l o n e"
    n = normalise(text)
    assert n.text == "come alone"
    start = n.text.index("alone")
    a, b = n.span_to_original(start, start + len("alone"))
    assert text[a:b] == "a l o n e"


def test_a_short_word_between_wider_gaps_maps_to_its_letters() -> None:
    text = "t e l l  t h e m  o r  i t  g o e s"
    n = normalise(text)
    assert n.text == "tell them or it goes"
    start = n.text.index(" or ") + 1
    a, b = n.span_to_original(start, start + 2)
    assert text[a:b] == "o r"


def test_a_long_message_of_many_short_runs_joins_each() -> None:
    # Each run is checked against the runs already joined in one sweep.
    n = normalise("s.n.a.p " + "m.e " * 900)
    assert n.text == "snap " + " ".join(["me"] * 900)
    n = normalise("s e n d  " + "o r  " * 700 + "i t")
    assert n.text == "send " + "or " * 700 + "it"


def test_part_of_a_split_word_maps_to_its_letters() -> None:
    n = normalise("s.n.a.p")
    assert n.offsets == (0, 2, 4, 6)
    assert n.span_to_original(1, 3) == (2, 5)  # "na" -> "n.a"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        # Several words spelled in one run of spaced letters are read back.
        ("go on, s e n d m e a p i c of you", "go on, send me a pic of you"),
        ("a d d m e o n s n a p", "add me on snap"),
        ("can u m e e t at 11", "can u meet at 11"),
        ("just send a s e l f i e", "just send a selfie"),
        # Leet letters spell as the letters they stand for: "a p 1 c" is "a pic".
        ("send me a p 1 c of u", "send me a pic of u"),
        ("w y s l i j z d j e c i e", "wyslij zdjecie"),
        # One word, or words the table does not spell whole, stay one word.
        ("s w i m", "swim"),
        ("x q z w p l", "xqzwpl"),
        # Short words fit almost anything: "n u m e r" is not "nu me r".
        ("n u m e r", "numer"),
        ("t e l e g r a m a", "telegrama"),
    ],
)
def test_a_run_of_spaced_letters_is_read_back_into_words(raw: str, text: str) -> None:
    n = normalise(raw)
    assert n.text == text
    assert Evasion.SPLIT in n.evasions


def test_a_word_read_back_from_a_run_maps_to_its_letters_and_the_space_after_it() -> None:
    raw = "s e n d p i c s"
    n = normalise(raw)
    assert n.text == "send pics"
    assert n.span_to_original(0, 4) == (0, 7)  # "send" -> "s e n d"
    assert n.span_to_original(4, 5) == (7, 8)  # the space read back -> the space after "d"
    assert raw[slice(*n.span_to_original(5, 9))] == "p i c s"


def test_identity_offsets_for_plain_ascii() -> None:
    n = normalise("Hello there")
    assert n.text == "hello there"
    assert n.offsets == tuple(range(11))
    assert n.span_to_original(6, 11) == (6, 11)


def test_empty_spans_and_empty_text() -> None:
    n = normalise("  a  ")
    assert n.span_to_original(0, 0) == (2, 2)
    assert n.span_to_original(1, 1) == (3, 3)
    empty = normalise("")
    assert empty == Normalised("", "", "")
    assert empty.span_to_original(0, 0) == (0, 0)
    assert normalise("\u200b\u200b").text == ""


@pytest.mark.parametrize(("start", "end"), [(-1, 1), (2, 1), (0, 4), (4, 4)])
def test_span_outside_text_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        normalise("abc").span_to_original(start, end)


# --- Diacritic folding ----------------------------------------------------------------------

FOLDED: list[tuple[str, str, str]] = [
    ("zdjęcie", "zdjęcie", "zdjecie"),
    ("Łódź", "łódź", "lodz"),
    ("Straße", "strasse", "strasse"),
    ("æble", "æble", "aeble"),
    ("s̶e̶x̶", "s̶e̶x̶", "sex"),
    ("İstanbul", "i̇stanbul", "istanbul"),
    ("años", "años", "anos"),
    ("plain", "plain", "plain"),
]


@pytest.mark.parametrize(("raw", "text", "folded"), FOLDED)
def test_folded_drops_diacritics(raw: str, text: str, folded: str) -> None:
    n = normalise(raw)
    assert (n.text, n.folded) == (text, folded)
    assert len(n.folded_offsets) == len(n.folded)
    assert raw[slice(*n.folded_span_to_original(0, len(n.folded)))] == raw


def test_folded_expansion_maps_to_its_letter() -> None:
    n = normalise("æble")
    assert n.folded_span_to_original(0, 2) == (0, 1)
    assert n.folded_span_to_original(2, 5) == (1, 4)


# --- Bounds and bad input --------------------------------------------------------------------


def test_long_input_is_truncated() -> None:
    n = normalise("abcdefgh", max_chars=4)
    assert (n.text, n.truncated, n.original) == ("abcd", True, "abcdefgh")
    assert not normalise("abcd", max_chars=4).truncated
    assert normalise("x" * (DEFAULT_MAX_CHARS + 1)).truncated
    assert normalise("abc", max_chars=0).text == ""


def test_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        normalise("abc", max_chars=-1)


def test_lone_surrogates_become_replacement_characters() -> None:
    n = normalise("\ud800abc\udfff")
    assert n.text == "\ufffdabc\ufffd"
    assert n.original == "\ud800abc\udfff"


def test_evasion_vocabulary() -> None:
    assert {e.value for e in Evasion} == {
        "homoglyph",
        "invisible",
        "leet",
        "split",
        "repeat",
        "compat",
        "mixed_script",
    }
    assert {f.value for f in Feature} == {"emoji_word"}


# --- Properties ----------------------------------------------------------------------------------

INVISIBLE = "\u00ad\u034f\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
INVISIBLE += "\u2060\u2061\u2066\u2067\u2068\u2069\u3164\ufe0e\ufe0f\ufeff\U000e0041\U000e0100"
INTERESTING = (
    string.ascii_letters
    + string.digits
    + "@$!|._-*/\\~+ ,'?\t\n\x00\x1b\x85"
    + INVISIBLE
    + "📷📸👻🍆💦🤫👩👧👍🏽🏴\u20e3☎😂"
    + "аеорсухкіѕԁһӏвнтмёαοικνρυχβγε"
    + "бджзлфцчшщыэюяλσδπ"
    + "ᴀʙᴄᴅᴇɴᴜꜱɑɡ"
    + "ｓｎａｐ１３𝐬𝐧ⓢ™½²ﬁ…\u00a0\u3000"
    + "ąęłóśżćńßéñöİıǅΣς\u0301\u0336"
    + "日本語ㅋ\ud800\udfff"
)
interesting_text = st.text(
    alphabet=st.one_of(st.sampled_from(INTERESTING), st.characters(exclude_categories=())),
    max_size=40,
)
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=200)
hidden = set(INVISIBLE) | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


def check_offsets(
    bound: int, text: str, starts: tuple[int, ...], span: Callable[[int, int], tuple[int, int]]
) -> None:
    assert len(starts) == len(text)
    assert all(0 <= s < bound for s in starts)
    assert list(starts) == sorted(starts)
    for i in range(len(text)):
        a, b = span(i, i + 1)
        assert 0 <= a < b <= bound


@settings(max_examples=400)
@given(st.one_of(interesting_text, any_text))
def test_never_raises_and_offsets_hold(raw: str) -> None:
    n = normalise(raw, max_chars=150)
    bound = min(len(raw), 150)
    assert n.truncated == (len(raw) > 150)
    check_offsets(bound, n.text, n.offsets, n.span_to_original)
    check_offsets(bound, n.folded, n.folded_offsets, n.folded_span_to_original)


@settings(max_examples=300)
@given(st.one_of(interesting_text, any_text), st.data())
def test_any_span_maps_to_a_valid_slice(raw: str, data: st.DataObject) -> None:
    n = normalise(raw)
    start = data.draw(st.integers(0, len(n.text)))
    end = data.draw(st.integers(start, len(n.text)))
    a, b = n.span_to_original(start, end)
    assert 0 <= a <= b <= len(raw)
    if start < end:
        assert n.offsets[start] == a


@settings(max_examples=300)
@given(st.one_of(interesting_text, any_text))
def test_text_is_clean(raw: str) -> None:
    text = normalise(raw).text
    assert not hidden & set(text)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    assert "  " not in text
    assert text == text.strip()
    assert " ".join(text.split()) == text


@settings(max_examples=400)
@given(st.one_of(interesting_text, any_text))
def test_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalise(raw).text
    twice = normalise(once)
    assert twice.text == once
    # Nothing is left to undo; a word that mixes Latin with real Cyrillic or
    # Greek letters ("sexя") still mixes them.
    assert twice.evasions <= {E.MIXED_SCRIPT}


ascii_text = st.text(alphabet=string.printable + "\x00\x7f", max_size=40)


@settings(max_examples=400)
@given(ascii_text)
def test_ascii_shortcut_agrees_with_the_full_pipeline(raw: str) -> None:
    # A trailing zero-width space changes nothing but forces the full pipeline.
    quick, full = normalise(raw), normalise(raw + "\u200b")
    assert (quick.text, quick.evasions, quick.offsets) == (full.text, full.evasions, full.offsets)


def _everything(n: Normalised) -> tuple[object, ...]:
    spans = [n.span_to_original(i, i + 1) for i in range(len(n.text))]
    folded = [n.folded_span_to_original(i, i + 1) for i in range(len(n.folded))]
    return (n.text, n.folded, n.evasions, n.features, n.truncated, spans, folded)


# Printable text in many scripts, and the characters the steps look for.
other_scripts = st.text(
    st.characters(categories=("L", "M", "N", "P", "S"), include_characters=" "), max_size=40
)
step_triggers = st.text(alphabet="aąbćeéßﬁİΣσςΰΐйёѕо 013@$!|._-😂👋🍆ＡⅠ", max_size=30)


@settings(max_examples=500)
@given(st.one_of(other_scripts, step_triggers))
def test_the_shortcut_for_other_scripts_agrees_with_the_full_pipeline(raw: str) -> None:
    quick = normalise(raw)
    assert _everything(quick) == _everything(normalise_module._normalise_slow(raw, raw, False))


@pytest.mark.parametrize(
    "raw",
    ["Cześć! Jak się masz?", "Привет, как дела?", "¿Qué tal el partido?", "ΚΑΛΗΜΕΡΑ σας", "日本語"],
)
def test_plain_text_in_other_scripts_takes_the_shortcut(raw: str) -> None:
    assert normalise(raw).offsets == tuple(range(len(raw)))
    assert normalise_module._plain(raw) is not None


# --- Split words never cross a word boundary ----------------------------------------------------

SPLIT_BOUNDARY: list[tuple[str, str]] = [
    ("m.e a p.i.c", "me a pic"),
    ("send m.e a p.i.c now", "send me a pic now"),
    ("a p.i.c", "a pic"),
    ("s n a p", "snap"),
    ("s n a p.x", "s n a p.x"),  # ambiguous: left alone rather than joined across words
    ("m.e a", "m.e a"),  # two dotted letters alone are ordinary ("i.e", "u.s")
    ("i.e. a b c", "i.e. a b c"),
    ("send m.e a p-i-c", "send m.e a pic"),  # a pair joins only with its own separator
]


@pytest.mark.parametrize(("raw", "text"), SPLIT_BOUNDARY)
def test_split_words_stay_within_their_word(raw: str, text: str) -> None:
    assert normalise(raw).text == text


SEPARATORS = "._-*/~+=#^|"
letters = st.text(alphabet="bdfghjlmpqstvwz", min_size=1, max_size=5)


@st.composite
def spaced_words(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Words as (typed, letters): plain words of two or more letters, single
    letters (never two in a row, which would be a real "s n a p" run), and
    words spelled with one separator between letters ("p.i.c")."""
    out: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["plain", "single", "split"]))
        if kind == "single" and (not out or len(out[-1][1]) > 1):
            word = draw(st.sampled_from("bdfghjlmpqstvwz"))
            out.append((word, word))
        elif kind == "split":
            word = draw(letters.filter(lambda w: len(w) >= 2))
            out.append((draw(st.sampled_from(SEPARATORS)).join(word), word))
        else:
            word = draw(letters.filter(lambda w: len(w) >= 2))
            out.append((word, word))
    return out


@settings(max_examples=300)
@given(spaced_words())
def test_separator_collapsing_never_crosses_a_space(words: list[tuple[str, str]]) -> None:
    raw = " ".join(typed for typed, _ in words)
    n = normalise(raw)
    tokens = n.text.split(" ")
    assert len(tokens) == len(words), (raw, n.text)
    # Each normalised word maps back inside the word that was typed, so a
    # highlight or a redaction never spills into the next word.
    where, pos = [], 0
    for typed, _ in words:
        where.append((pos, pos + len(typed)))
        pos += len(typed) + 1
    start = 0
    for token, (a, b) in zip(tokens, where, strict=True):
        lo, hi = n.span_to_original(start, start + len(token))
        assert a <= lo < hi <= b, (raw, n.text, token)
        start += len(token) + 1


@settings(max_examples=300)
@given(st.one_of(interesting_text, any_text), st.data())
def test_every_folded_span_maps_inside_the_original(raw: str, data: st.DataObject) -> None:
    n = normalise(raw)
    start = data.draw(st.integers(0, len(n.folded)))
    end = data.draw(st.integers(start, len(n.folded)))
    a, b = n.folded_span_to_original(start, end)
    assert 0 <= a <= b <= len(raw)
    if start < end:
        assert a < b  # a highlighted match covers something the user typed


def test_a_normalised_message_compares_hashes_and_shows_itself_by_its_fields() -> None:
    n = normalise("Ｈｅｌｌｏ  there")
    assert n == normalise("Ｈｅｌｌｏ  there")
    assert hash(n) == hash(normalise("Ｈｅｌｌｏ  there"))
    assert n != Normalised(n.original, n.text, n.folded, n.evasions, n.features)  # offsets too
    assert n != normalise("hello there")
    assert repr(Normalised("A", "a", "a")) == (
        "Normalised(original='A', text='a', folded='a', evasions=frozenset(), "
        "features=frozenset(), truncated=False)"
    )
