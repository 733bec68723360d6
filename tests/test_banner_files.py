"""Reading the banner catalogue: every file, every problem with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatguard.banner_files import load_catalogue
from chatguard.banners import Banner, BannerError, Catalogue, render
from chatguard.events import Severity
from tests.test_banners import GOOD, write

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


# -- the richer format ------------------------------------------------------------------

FULL = """\
locales: [en, es]
banners:
  - id: room_hello
    purpose: test
    severity: info
    audience: sender
    trigger: {events: [room_entry]}
    ages: [minor, unknown]
    resources: [child_helpline]
    cap: {count: 2, window: 60}
    cooldown: 5
    measure: notice
    text:
      en: "Welcome to {room}. Type {report}. Help: {resources}"
      es: "Bienvenida a {room}. Escribe {report}. Ayuda: {resources}"
    adult_text:
      en: "Adults: {room} is moderated."
      es: "Adultos: {room} está moderada."
    variants:
      - id: a
        weight: 3
        text: {en: "A {room}", es: "A-es {room}"}
      - id: b
        text: {en: "B {room}", es: "B-es {room}"}
"""

RESOURCES = """\
resources:
  - {id: uk, kind: child_helpline, name: Childline, contact: "0800 1111",
     locales: [en], regions: [GB]}
  - {id: es, kind: child_helpline, name: ANAR, contact: "900 20 20 10",
     locales: [es], regions: [ES]}
"""


def full_catalogue(tmp_path: Path) -> Catalogue:
    write(tmp_path, "b.yaml", FULL)
    write(tmp_path, "resources.yaml", RESOURCES)
    return load_catalogue(tmp_path)


def test_every_part_of_a_banner_loads(tmp_path: Path) -> None:
    catalogue = full_catalogue(tmp_path)
    banner = catalogue.get("room_hello")
    assert banner is not None
    assert (banner.audience, banner.trigger.events, banner.ages) == (
        "sender",
        frozenset({"room_entry"}),
        frozenset({"minor", "unknown"}),
    )
    assert (banner.cap, banner.cap_window, banner.cooldown, banner.measure) == (
        2,
        60.0,
        5.0,
        "notice",
    )
    assert [(v.id, v.weight) for v in banner.variants] == [("a", 3.0), ("b", 1.0)]
    assert catalogue.locales == frozenset({"en", "es"})
    assert [r.id for r in catalogue.resources] == ["uk", "es"]


def test_rendering_picks_wording_variant_locale_and_fills_placeholders(tmp_path: Path) -> None:
    catalogue = full_catalogue(tmp_path)
    banner = catalogue.get("room_hello")
    assert banner is not None

    def text(**kw: object) -> str:
        return render(catalogue, banner, default_locale="en", room="games", **kw).text  # type: ignore[arg-type]

    assert text(locale="es-MX") == (
        "Bienvenida a games. Escribe /report. Ayuda: ANAR: 900 20 20 10"
    )
    assert text(locale="en", region="GB") == (
        "Welcome to games. Type /report. Help: Childline: 0800 1111"
    )
    assert text(locale="en", adult=True) == "Adults: games is moderated."
    assert text(locale="es", variant="b") == "B-es games"
    assert text(locale="es", variant="no-such-variant") == (
        "Bienvenida a games. Escribe /report. Ayuda: ANAR: 900 20 20 10"
    )


def test_the_rule_is_only_revealed_when_the_banner_allows_it(tmp_path: Path) -> None:
    write(
        tmp_path, "b.yaml", "banners:\n  - {id: r, reveal_rule: true, text: {en: 'Rule {rule}.'}}\n"
    )
    catalogue = load_catalogue(tmp_path)
    banner = catalogue.get("r")
    assert banner is not None
    assert (
        render(catalogue, banner, locale="en", default_locale="en", rule="x.y").text == "Rule x.y."
    )
    hidden = Banner("h", "", Severity.INFO, {"en": "Rule {rule}."})
    assert (
        render(Catalogue({}), hidden, locale="en", default_locale="en", rule="x.y").text == "Rule ."
    )


@pytest.mark.parametrize(
    ("banner", "expected"),
    [
        ("{id: b, text: {en: 'Hi {name}'}}", "{file}:2: b: `text.en`: unknown placeholder {name}"),
        ("{id: b, text: {en: 'Hi {'}}", "{file}:2: b: `text.en`: bad braces"),
        (
            "{id: b, text: {en: 'Rule {rule}'}}",
            "{file}:2: b: `text.en`: {rule} needs `reveal_rule: true`",
        ),
        (
            "{id: b, trigger: {signals: [telepathy]}, text: {en: x}}",
            "{file}:2: b: `trigger.signals`: unknown signal 'telepathy'",
        ),
        (
            "{id: b, trigger: {events: [birthday]}, text: {en: x}}",
            "{file}:2: b: `trigger.events`: unknown event 'birthday'",
        ),
        (
            "{id: b, trigger: {actions: [block]}, text: {en: x}}",
            "{file}:2: b: `trigger.actions`: unknown action 'block'",
        ),
        ("{id: b, audience: everyone, text: {en: x}}", "{file}:2: b: `audience` must be one of"),
        ("{id: b, ages: [toddler], text: {en: x}}", "{file}:2: b: `ages` must list age bands"),
        ("{id: b, cap: {count: 0, window: 60}, text: {en: x}}", "{file}:2: b: `cap` must be"),
        ("{id: b, cooldown: -1, text: {en: x}}", "{file}:2: b: `cooldown` must be seconds"),
        ("{id: b, measure: vibes, text: {en: x}}", "{file}:2: b: `measure` must be one of"),
        (
            "{id: b, resources: [hotline], text: {en: x}}",
            "{file}:2: b: no resource of kind 'hotline'",
        ),
        (
            "{id: b, variants: [{id: a, weight: 0, text: {en: x}}], text: {en: x}}",
            "{file}:2: b: variant a: `weight` must be a positive number",
        ),
        (
            "{id: b, variants: [{text: {en: x}}], text: {en: x}}",
            "{file}:2: b: each variant needs a unique non-empty `id`",
        ),
        (
            "{id: b, reveal_rule: maybe, text: {en: x}}",
            "{file}:2: b: `reveal_rule` must be true or false",
        ),
    ],
)
def test_a_bad_banner_is_refused_with_file_line_and_reason(
    tmp_path: Path, banner: str, expected: str
) -> None:
    path = write(tmp_path, "bad.yaml", f"banners:\n  - {banner}\n")
    with pytest.raises(BannerError) as caught:
        load_catalogue(tmp_path)
    assert expected.replace("{file}", str(path)) in str(caught.value)


def test_declared_locales_are_required_of_every_wording(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.yaml",
        "locales: [en, pl]\nbanners:\n  - id: b\n    text: {en: x, pl: y}\n"
        "    adult_text: {en: z}\n    variants:\n      - {id: v, text: {en: w}}\n",
    )
    with pytest.raises(BannerError) as caught:
        load_catalogue(tmp_path)
    assert str(caught.value).splitlines() == [
        f"{path}:5: b: `adult_text` is missing locale(s) pl",
        f"{path}:6: b: `variants.v.text` is missing locale(s) pl",
    ]


def test_a_bad_resource_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "resources.yaml", "resources:\n  - {id: x, kind: k, name: N}\n")
    with pytest.raises(
        BannerError, match="`id`, `kind`, `name` and `contact` are required"
    ) as caught:
        load_catalogue(tmp_path)
    assert str(caught.value).startswith(f"{path}:2: x:")
