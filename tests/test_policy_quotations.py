"""Finding quotations in a message, and the message without them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.policy import quotations
from chatguard.policy.quotations import quoted_regions, without_quotations


def test_quoted_regions_pair_marks_and_ignore_unclosed_ones() -> None:
    assert quoted_regions('a "b" c \u201cd\u201d \u00abe\u00bb \u201ef\u201c "g') == [
        (3, 4),
        (9, 10),
        (13, 14),
        (17, 18),
    ]
    assert without_quotations('say "x y z" now') == "say  .  now"
    assert without_quotations('"only a quotation"') is None
    assert without_quotations("no quotation") is None


def test_a_word_or_two_in_quotation_marks_is_emphasis_not_quoting() -> None:
    assert without_quotations('send me a "pic" now') is None
    assert without_quotations('he said "send more" lol') is None
    assert without_quotations('he said "send more pics" lol') == "he said  .  lol"


def test_single_quotes_quote_only_at_word_boundaries() -> None:
    lesson = "Example 1: 'you're so mature for your age, not like the kids'"
    assert quoted_regions(lesson) == [(12, len(lesson) - 1)]
    assert without_quotations(lesson) == "Example 1:  . "
    assert without_quotations("don't tell 'em about the kids' game") is None
    assert quoted_regions("it's the kids' game") == []
    assert without_quotations("he said 'send me a pic' ok") == "he said  .  ok"
    assert without_quotations("‘send me more pics’ is what he wrote") == " .  is what he wrote"


def test_a_list_of_quotations_is_examples_even_with_no_words_around_them() -> None:
    lesson = "\u00ab T'es trop mature pour ton \u00e2ge \u00bb"
    lesson += " / \u00ab Envoie une photo de toi \u00bb"
    outside = without_quotations(lesson)
    assert outside is not None
    assert not any(ch.isalnum() for ch in outside)
    # One quotation that is the whole message is still the sender's own words.
    assert without_quotations("\u00ab envoie une photo de toi \u00bb") is None


def test_a_whole_message_quotation_that_quotes_in_turn_is_looked_into() -> None:
    """A forwarded warning in quotation marks quotes what it warns of."""
    warning = "\"Alert: an adult writes 'you are so mature for your age' to children.\""
    outside = without_quotations(warning)
    assert outside is not None
    assert "mature" not in outside
    assert "Alert" in outside
    assert "children" in outside
    # Nothing quoted inside: still the sender's own words.
    assert without_quotations('"send me a pic in your bikini"') is None
    # Marks nested deeper than MAX_DEPTH are not looked into.
    assert without_quotations('"' * 8 + "send me a pic in your bikini" + '"' * 8) is None


def _regions_char_by_char(text: str) -> list[tuple[int, int]]:
    """``quoted_regions`` as first written: one character after another."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        close = quotations._QUOTES.get(text[i])
        if close is None:
            if (
                text[i] in quotations._SINGLE
                and (i == 0 or text[i - 1] in quotations._OPEN_AFTER)
                and i + 1 < n
                and not text[i + 1].isspace()
                and not quotations._ELISION.match(text, i + 1)
            ):
                j = next(
                    (
                        j
                        for j in range(i + 2, n)
                        if text[j] in quotations._SINGLE
                        and not text[j - 1].isspace()
                        and (j + 1 == n or not text[j + 1].isalnum())
                    ),
                    -1,
                )
                if j >= 0:
                    out.append((i + 1, j))
                    i = j + 1
                    continue
            i += 1
            continue
        j = text.find(close, i + 1)
        if close == "”" and j < 0:
            j = text.find("“", i + 1)
        if j < 0:
            i += 1
            continue
        out.append((i + 1, j))
        i = j + 1
    return out


@settings(max_examples=500)
@given(st.lists(st.sampled_from([*"ab c'\"“”„«»‘’:(\t", "em", "cause", "x."]), max_size=30))
def test_going_from_mark_to_mark_finds_what_reading_every_character_finds(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    assert quoted_regions(text) == _regions_char_by_char(text)


def test_a_quoted_passage_of_several_sentences_is_quoting_even_alone() -> None:
    """A lesson's sample message, read out whole: nobody wraps three sentences
    of their own in quotation marks. One or two quoted sentences alone are
    still the sender's own words (a poem line, a lyric)."""
    sample = (
        "\"You're so mature for your age. Don't tell your parents about me, "
        "they won't understand. Can you send me a pic? It'll be our secret.\""
    )
    assert without_quotations(sample) == " . "
    assert without_quotations('"you left me on read. the typing bubble haunts me"') is None
    assert without_quotations("'they ask why im always cold / the school is freezing'") is None
    assert without_quotations('"Really? Yes. Fine"') is None  # a word a sentence: emphasis
