"""Tests for ``chatguard.policy.language``: a message's language from its
function words, with the words the default pack gives each language."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatguard.policy.language import MAX_WORDS, LanguageGuesser, base_language
from chatguard.policy.model import Policy
from chatguard.policy.normalise import normalise
from chatguard.policy.rules import load_policy

PACK = Path(__file__).resolve().parent.parent / "policies"


@pytest.fixture(scope="module")
def pack(pack_cache: Path) -> Policy:
    return load_policy(PACK, cache_dir=pack_cache)


@pytest.fixture(scope="module")
def pack_guesser(pack: Policy) -> LanguageGuesser:
    return LanguageGuesser(pack.function_words)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("mama mi sprawdza telefon wiec nie moge duzo pisac", "pl"),
        ("opa! normalmente 350 mas depende. é pra você? quantos anos tu tem?", "pt"),
        ("can we do it in pairs", "en"),
        ("mamá, ya estoy en casa, me voy a duchar", "es"),
        ("Ich hab dir doch gesagt, dass ich heute nicht kann", "de"),
        ("je suis chez ma tante ce soir, tu peux venir ?", "fr"),
        ("ok mum", None),  # too few function words to tell
        ("lol", None),
        ("", None),
    ],
)
def test_the_pack_tells_the_language_of_a_message(
    pack_guesser: LanguageGuesser, text: str, language: str | None
) -> None:
    assert pack_guesser.guess(normalise(text).folded) == language


def test_a_tie_is_not_a_language() -> None:
    g = LanguageGuesser({"es": frozenset({"mas", "que"}), "pt": frozenset({"mas", "que"})})
    assert g.guess("mas que nada") is None


def test_fewer_than_two_function_words_say_nothing() -> None:
    g = LanguageGuesser({"pl": frozenset({"nie", "jest"})})
    assert g.guess("nie") is None
    assert g.guess("nie jest") == "pl"


def test_only_the_first_words_are_read() -> None:
    g = LanguageGuesser({"pl": frozenset({"nie"}), "en": frozenset({"the"})})
    text = " ".join(["x"] * MAX_WORDS) + " nie nie nie"
    assert g.guess(text) is None
    assert g.guess("the the " + text) == "en"


def test_languages_and_base_codes() -> None:
    g = LanguageGuesser({"pt": frozenset({"voce"}), "en": frozenset({"the"})})
    assert g.languages == {"pt", "en"}
    assert base_language("pt-br") == "pt"
    assert base_language("pl") == "pl"


def test_every_language_of_the_pack_has_function_words(pack: Policy) -> None:
    languages = {base_language(c) for r in pack.rules for c in r.languages}
    assert languages <= set(pack.function_words)
