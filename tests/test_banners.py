"""The banner catalogue: loading ``*.yaml`` files, refusing bad ones, choosing a locale."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatguard.banner_files import load_catalogue
from chatguard.banners import FALLBACK_LOCALE, Banner
from chatguard.events import Severity
from chatguard.policy.risk import DEFAULT_SETTINGS

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
banners:
  - id: hello
    purpose: greet
    severity: critical
    text:
      en: Hello.
      es: Hola.
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- locale fallback ------------------------------------------------------------------

TEXTS = {"en": "E", "es": "S", "pt": "P", "pt-BR": "PB", "fr": "F"}


@pytest.mark.parametrize(
    ("locale", "default_locale", "expected"),
    [
        ("es", "en", "S"),  # the user's own locale
        ("pt-BR", "en", "PB"),  # a regional text when there is one
        ("es-MX", "en", "S"),  # else the language part
        ("pt-PT", "fr", "P"),  # the language part before the default locale
        ("de", "fr", "F"),  # else banners.default_locale
        ("de-AT", "fr", "F"),
        ("de", "en", "E"),
        ("de", "it", "E"),  # else English
        (None, "fr", "F"),  # no locale known (a banner for someone else)
        (None, "en", "E"),
        ("", "es", "S"),
    ],
)
def test_text_falls_back_locale_then_language_then_default_then_english(
    locale: str | None, default_locale: str, expected: str
) -> None:
    banner = Banner("b", "purpose", Severity.INFO, TEXTS)
    assert banner.text_for(locale, default_locale) == expected


def test_the_default_locale_defaults_to_english() -> None:
    banner = Banner("b", "purpose", Severity.INFO, TEXTS)
    assert FALLBACK_LOCALE == "en"
    assert banner.text_for("de") == "E"
    assert banner.text_for("es") == "S"


# -- the shipped catalogue ----------------------------------------------------------


def banner_ids_in(node: Any) -> Iterator[str]:
    """Every ``banner:`` value anywhere in a loaded YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "banner" and isinstance(value, str):
                yield value
            else:
                yield from banner_ids_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from banner_ids_in(item)


def test_the_shipped_catalogue_loads_with_english_for_every_banner() -> None:
    catalogue = load_catalogue(ROOT / "banners")
    assert sorted(catalogue.banners) == [
        "deterrence_image_request",
        "first_contact_notice",
        "off_platform_warning",
        "pi_share_confirm",
        "report_received",
        "room_entry_notice",
        "safeguarding_help",
        "stay_safe_reminder",
    ]
    for banner in catalogue.banners.values():
        # All six languages of the default pack, for every wording.
        for texts in (banner.text, banner.adult_text, *(v.text for v in banner.variants)):
            if texts:
                assert set(texts) == {"en", "es", "fr", "de", "pt", "pl"}, banner.id
        assert banner.purpose


def test_every_banner_the_default_pack_names_is_in_the_shipped_catalogue() -> None:
    catalogue = load_catalogue(ROOT / "banners")
    named = {
        banner
        for path in sorted((ROOT / "policies").rglob("*.yaml"))
        for banner in banner_ids_in(yaml.safe_load(path.read_text(encoding="utf-8")))
    }
    assert DEFAULT_SETTINGS.safeguarding is not None
    assert DEFAULT_SETTINGS.safeguarding.banner is not None
    named.add(DEFAULT_SETTINGS.safeguarding.banner)
    assert named
    assert sorted(b for b in named if catalogue.get(b) is None) == []


def test_the_catalogue_readme_documents_every_shipped_banner() -> None:
    readme = (ROOT / "banners" / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z][a-z0-9_]+)`", readme))
    shipped = set(load_catalogue(ROOT / "banners").banners)
    assert shipped <= documented


def test_the_shipped_catalogue_speaks_every_language_and_signal_of_the_default_pack() -> None:
    # The fast form of `chatguard banners lint banners --policy policies`.
    rules = [
        yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "policies").glob("*/*.yaml"))
    ]
    languages = {doc["language"] for doc in rules}
    signals = {rule["signal"] for doc in rules for rule in doc.get("rules", [])}
    assert languages == {"en", "es", "fr", "de", "pt", "pl"}
    catalogue = load_catalogue(ROOT / "banners")
    for banner in catalogue.banners.values():
        assert banner.trigger.signals <= signals, banner.id
        assert languages <= set(banner.text), banner.id
    # Every help resource named by a banner exists in every language.
    for banner in catalogue.banners.values():
        for language in languages:
            assert len(catalogue.resources_for(banner.resources, language)) >= len(
                set(banner.resources)
            ), (banner.id, language)
