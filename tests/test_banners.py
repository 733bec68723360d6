"""The banner catalogue: loading ``*.yaml`` files, refusing bad ones, choosing a locale."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatguard.banner_files import load_catalogue
from chatguard.banners import FALLBACK_LOCALE, Banner, BannerError
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


# -- loading --------------------------------------------------------------------------


def test_a_catalogue_loads_every_yaml_file_below_the_directory(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD)
    second = write(
        tmp_path,
        "more/b.yaml",
        "banners:\n  - id: plain\n    text: {en: Plain text.}\n",
    )
    write(tmp_path, "README.md", "not a catalogue")
    write(tmp_path, "ignored.yml", "this: [is not read")
    catalogue = load_catalogue(tmp_path)
    assert sorted(catalogue.banners) == ["hello", "plain"]
    assert catalogue.get("hello") == Banner(
        "hello", "greet", Severity.CRITICAL, {"en": "Hello.", "es": "Hola."}, str(first), 2
    )
    plain = catalogue.get("plain")
    assert plain is not None
    # purpose is optional; severity defaults to info.
    assert (plain.purpose, plain.severity, plain.file) == ("", Severity.INFO, str(second))
    assert catalogue.get("missing") is None


def test_a_locale_yaml_reads_as_a_boolean_loads_when_quoted(tmp_path: Path) -> None:
    # Unquoted, YAML reads the Norwegian `no:` as false and the catalogue is refused.
    write(tmp_path, "no.yaml", "banners:\n  - id: b\n    text: {en: Hi., no: Hei.}\n")
    with pytest.raises(BannerError, match="`text` must map locales"):
        load_catalogue(tmp_path)
    write(tmp_path, "no.yaml", 'banners:\n  - id: b\n    text: {en: Hi., "no": Hei.}\n')
    banner = load_catalogue(tmp_path).get("b")
    assert banner is not None
    assert banner.text_for("no-NO") == "Hei."


def test_an_empty_directory_is_an_empty_catalogue(tmp_path: Path) -> None:
    assert dict(load_catalogue(tmp_path).banners) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("banners: [\n", "{file}:2: cannot load:"),
        ("- id: x\n", "{file}:1: expected a mapping with a `banners` list"),
        ("banners: {id: x}\n", "{file}:1: expected a mapping with a `banners` list"),
        ("", "{file}:1: expected a mapping with a `banners` list"),
        ("banners: [hello]\n", "{file}:1: banners[0]: a banner must be a mapping"),
        (
            "banners:\n  - id: ok\n    text: {en: Fine.}\n  - text: {en: No id.}\n",
            "{file}:4: banners[1]: `id` must be a non-empty string",
        ),
        ("banners:\n  - {id: '', text: {en: x}}\n", "{file}:2: banners[0]: `id` must be"),
        (
            "banners:\n  - {id: b, colour: red, text: {en: x}}\n",
            "{file}:2: banners[0]: unknown key 'colour'",
        ),
        ("banners:\n  - {id: b}\n", "{file}:2: b: `text` must map locales to non-empty text"),
        ("banners:\n  - {id: b, text: Hello}\n", "{file}:2: b: `text` must map locales"),
        ("banners:\n  - {id: b, text: {en: '  '}}\n", "{file}:2: b: `text` must map locales"),
        ("banners:\n  - {id: b, text: {en: x, es: 3}}\n", "{file}:2: b: `text` must map locales"),
        ("banners:\n  - {id: b, text: {es: Hola.}}\n", "{file}:2: b: `text` needs an `en` entry"),
        (
            "banners:\n  - id: b\n    severity: loud\n    text: {en: x}\n",
            "{file}:3: b: `severity` must be info, warning or critical",
        ),
        (
            "banners:\n  - {id: b, text: {en: x}}\n  - {id: b, text: {en: y}}\n",
            "{file}:3: b: duplicate id (also in {file})",
        ),
    ],
)
def test_a_bad_catalogue_is_refused_naming_file_and_banner(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    write(tmp_path, "good.yaml", GOOD)
    with pytest.raises(BannerError) as caught:
        load_catalogue(tmp_path)
    assert expected.format(file=path) in str(caught.value)


def test_every_problem_in_every_file_is_listed_one_per_line(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", "banners:\n  - {id: a, text: {es: Hola.}}\n  - 7\n")
    two = write(tmp_path, "two/two.yaml", "banners:\n  - {id: c, severity: loud, text: {en: x}}\n")
    with pytest.raises(BannerError) as caught:
        load_catalogue(tmp_path)
    assert str(caught.value).splitlines() == [
        f"{one}:2: a: `text` needs an `en` entry",
        f"{one}:1: banners[1]: a banner must be a mapping",
        f"{two}:2: c: `severity` must be info, warning or critical",
    ]


def test_a_duplicate_across_files_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD)
    second = write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(BannerError, match="duplicate") as caught:
        load_catalogue(tmp_path)
    assert str(caught.value) == f"{second}:2: hello: duplicate id (also in {first})"


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
