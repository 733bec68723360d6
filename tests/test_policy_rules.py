"""Loading policy packs: every error names file, line and reason; phrases are
normalised like messages; the version hash follows the content."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chatguard.policy.model import ActionType, Mode, PatternKind, Signal, Where
from chatguard.policy.rules import (
    PolicyError,
    literal_pattern,
    load_policy,
    load_rule_file,
    regex_pattern,
)
from chatguard.policy.signal_model import FEATURES

RULE = """\
language: en
rules:
  - id: en.isolation.move_app
    description: Asks to move to another app
    signal: isolation
    patterns:
      - phrase: add me on snap
    examples:
      match: [add me on snap]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as e:
        load_rule_file(path)
    assert str(e.value) == "\n".join(map(str, e.value.errors))
    return [str(issue) for issue in e.value.errors]


def rule_with(*lines: str, patterns: str = "      - phrase: add me on snap") -> str:
    """A one-rule file: ``lines`` (indented as rule keys) start at line 6."""
    head = "language: en\nrules:\n  - id: r1\n    description: d\n    signal: isolation\n"
    body = "".join(f"    {line}\n" for line in lines)
    tail = f"    patterns:\n{patterns}\n    examples: {{match: [add me on snap]}}\n"
    return head + body + tail


# (name, file text, [(line, reason), ...])
ERRORS = [
    (
        "unknown key",
        rule_with("patern: x"),
        [(6, "unknown key 'patern' in a rule (did you mean 'patterns'?)")],
    ),
    (
        "unknown key, no close match",
        rule_with("zzz: 1"),
        [
            (
                6,
                "unknown key 'zzz' in a rule (allowed: id, description, signal, languages, "
                "patterns, unless, signal_unless, weight, scope, actions, mode, examples, "
                "yes_means, declares_recipient, declares_sender, trigger)",
            )
        ],
    ),
    (
        "missing field",
        "language: en\nrules:\n  - id: r1\n    description: d\n"
        "    patterns: [{phrase: hi there}]\n    examples: {match: [hi there]}\n",
        [(3, "a rule is missing 'signal'")],
    ),
    ("bad type", rule_with("weight: heavy"), [(6, "'weight' must be a number")]),
    ("negative weight", rule_with("weight: -1"), [(6, "'weight' must be at least 0")]),
    (
        "unknown signal",
        rule_with().replace("signal: isolation", "signal: isolaton"),
        [(5, "unknown signal 'isolaton' (did you mean 'isolation'?)")],
    ),
    (
        "evasion is not a rule signal",
        rule_with().replace("signal: isolation", "signal: evasion"),
        [(5, "signal 'evasion' is set by the normaliser, not by rules")],
    ),
    (
        "unknown action type",
        rule_with("actions: [{type: warn}]"),
        [
            (
                6,
                "unknown action type 'warn' (allowed: banner, hold, redact, block, "
                "capture, escalate)",
            )
        ],
    ),
    (
        "unknown audience",
        rule_with("actions: [{type: banner, banner: b, audience: everyone}]"),
        [
            (
                6,
                "unknown audience 'everyone' (allowed: sender, recipients, room, "
                "minor_participants)",
            )
        ],
    ),
    (
        "unknown severity",
        rule_with("actions: [{type: escalate, severity: urgent}]"),
        [(6, "unknown severity 'urgent' (allowed: low, medium, high, critical)")],
    ),
    (
        "action missing a parameter",
        rule_with("actions: [{type: banner, banner: b}]"),
        [(6, "a banner action is missing 'audience'")],
    ),
    (
        "unknown action parameter",
        rule_with("actions: [{type: block, notice: n, colour: red}]"),
        [(6, "unknown key 'colour' in a block action (allowed: type, notice)")],
    ),
    (
        "capture context out of range",
        rule_with("actions: [{type: capture, before: 1000}]"),
        [(6, "'before' must be a whole number from 0 to 200")],
    ),
    (
        "duplicate rule id",
        RULE + RULE.split("rules:\n", 1)[1],
        [(10, "duplicate rule id 'en.isolation.move_app' (also at {file}:3)")],
    ),
    (
        "empty patterns",
        rule_with().replace("patterns:\n      - phrase: add me on snap", "patterns: []"),
        [(6, "'patterns' is empty")],
    ),
    (
        "no examples.match",
        rule_with().replace("    examples: {match: [add me on snap]}\n", ""),
        [(3, "rule has no examples.match: add at least one message it must match")],
    ),
    (
        "examples without match",
        rule_with().replace("{match: [add me on snap]}", "{no_match: [hello]}"),
        [(8, "rule has no examples.match: add at least one message it must match")],
    ),
    (
        "bad regex",
        rule_with(patterns="      - regex: '(add'"),
        [(7, "bad regex: missing ) at position 4")],
    ),
    (
        "unsafe regex",
        rule_with(patterns="      - regex: '(a+)+b'"),
        [
            (
                7,
                "unsafe regex: nested repetition (a repeated group holds another "
                "repetition); give the outer one a limit of at most 10",
            )
        ],
    ),
    (
        "regex a message never holds",
        rule_with(patterns="      - regex: 'Snap'"),
        [(7, "regex has 'S', which normalised messages never hold: write 's'")],
    ),
    (
        "regex with a diacritic",
        rule_with(patterns="      - regex: 'zdjęcie'"),
        [(7, "regex has 'ę', which normalised messages never hold: write 'e'")],
    ),
    (
        "fuzzy on a regex",
        rule_with(patterns="      - regex: 'snap'\n        fuzzy: 1"),
        [(8, "'fuzzy' works with phrase and words, not regex")],
    ),
    (
        "fuzzy on a short word",
        rule_with(patterns="      - words: [kik]\n        fuzzy: 1"),
        [(7, "fuzzy: 1 needs at least 5 letters; 'kik' has 3")],
    ),
    (
        "fuzzy out of range",
        rule_with(patterns="      - words: [snapchat]\n        fuzzy: 5"),
        [(8, "'fuzzy' must be a whole number from 0 to 3")],
    ),
    (
        "two kinds in one pattern",
        rule_with(patterns="      - {phrase: a b, words: [c]}"),
        [(7, "a pattern needs exactly one of 'phrase', 'words' or 'regex'")],
    ),
    (
        "word with a space",
        rule_with(patterns="      - words: [ok, add me]"),
        [(7, "word 'add me' has a space: use phrase")],
    ),
    (
        "phrase empty once normalised",
        rule_with(patterns="      - phrase: '\u200b'"),
        [(7, "phrase '\\u200b' is empty once normalised")],
    ),
    (
        "bad scope values",
        rule_with(
            "scope:",
            "  origins: [server]",
            "  where: dm",
            "  sender_age: kid",
        ),
        [
            (7, "unknown origin 'server' (allowed: client, upstream, both)"),
            (8, "unknown 'where' value 'dm' (allowed: any, room, direct)"),
            (9, "unknown age band 'kid' (allowed: minor, adult, unknown)"),
        ],
    ),
    ("bad mode", rule_with("mode: loud"), [(6, "unknown mode 'loud' (allowed: enforce, shadow)")]),
    (
        "bad yes_means",
        rule_with("yes_means: sexual"),
        [
            (
                6,
                "unknown yes_means 'sexual' (allowed: minor_self_declared, adult_self_declared)",
            )
        ],
    ),
    (
        "declares_recipient on a signal that is not an age",
        rule_with("declares_recipient: true"),
        [
            (
                6,
                "declares_recipient needs a signal of minor_self_declared or "
                "adult_self_declared (an age declaration)",
            )
        ],
    ),
    (
        "a declaration that speaks for nobody",
        rule_with("declares_sender: false", patterns="      - phrase: ur only 13").replace(
            "signal: isolation", "signal: minor_self_declared"
        ),
        [
            (
                6,
                "declares_sender: false needs declares_recipient: true"
                " (a declaration that speaks for nobody declares nothing)",
            )
        ],
    ),
    (
        "declares_recipient not a boolean",
        rule_with("declares_recipient: both"),
        [(6, "'declares_recipient' must be true or false")],
    ),
    (
        "trigger: false on a signal that does not trigger",
        rule_with("trigger: false"),
        [
            (
                6,
                "trigger: false is for a rule whose signal is sextortion or safeguarding "
                "(the signals that escalate at once)",
            )
        ],
    ),
    (
        "trigger not a boolean",
        rule_with("trigger: later"),
        [(6, "'trigger' must be true or false")],
    ),
    (
        "bad language",
        rule_with("languages: [English]"),
        [(6, "'English' is not a language code such as en or pt-br")],
    ),
    (
        "duplicate key",
        rule_with("weight: 1", "weight: 2"),
        [(7, "duplicate key 'weight' in a rule (first at line 6)")],
    ),
    (
        "unknown top-level key",
        "lang: en\n" + RULE.split("\n", 1)[1],
        [
            (1, "unknown key 'lang' in a rule file (did you mean 'language'?)"),
            (3, "rule has no language: set 'language' at the top of the file or 'languages'"),
        ],
    ),
    ("YAML syntax error", RULE + "  - id: [unclosed\n", [(11, "YAML syntax error: ")]),
    ("empty file", "", [(0, "file is empty: a rule file needs 'rules'")]),
    (
        "neither rules nor function words",
        "language: en\n",
        [(1, "a rule file is missing 'rules'")],
    ),
    (
        "function words without a language",
        "function_words: [the, and]\n",
        [(1, "'function_words' needs the file's 'language'")],
    ),
    (
        "a function word that is not one word",
        "language: en\nfunction_words: [the, 'of the']\n",
        [(2, "'of the' is not one word")],
    ),
    (
        "rules not a list",
        "language: en\nrules: {id: x}\n",
        [(2, "'rules' must be a list, not a mapping")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_names_file_line_and_reason(
    tmp_path: Path, text: str, expected: list[tuple[int, str]]
) -> None:
    path = tmp_path / "en" / "rules.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    got = errors_of(path)
    want = [
        (f"{path}:{line}: " if line else f"{path}: ") + reason.format(file=path)
        for line, reason in expected
    ]
    if want and want[0].endswith("YAML syntax error: "):
        assert len(got) == 1
        assert got[0].startswith(want[0])
    else:
        assert got == want


def test_all_errors_of_all_files_in_one_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", RULE.replace("signal: isolation", "signal: nope"))
    other = RULE.replace("en.isolation", "es.isolation").replace("snap]", "snap]\n    mode: x")
    write(tmp_path / "b" / "c.yaml", other)
    write(tmp_path / "policy.yaml", "mode: loud\nextra: 1\n")
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path)
    assert [str(i) for i in e.value.errors] == [
        f"{tmp_path}/policy.yaml:1: unknown mode 'loud' (allowed: enforce, shadow)",
        f"{tmp_path}/policy.yaml:2: unknown key 'extra' in policy.yaml (allowed: mode, "
        "half_life, max_chars, thresholds, settings, signal_model)",
        f"{tmp_path}/a.yaml:5: unknown signal 'nope' (allowed: age_probe, minor_self_declared, "
        "adult_self_declared, flattery, exclusivity, secrecy, risk_assessment, isolation, "
        "pi_request, pi_share, image_request, sexual, gift_lure, meeting, sextortion, "
        "safeguarding, kinship, openness)",
        f"{tmp_path}/b/c.yaml:10: unknown mode 'x' (allowed: enforce, shadow)",
    ]


def test_duplicate_id_across_files_names_both_places(tmp_path: Path) -> None:
    write(tmp_path / "en" / "a.yaml", RULE)
    write(tmp_path / "es" / "b.yaml", RULE)
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path)
    assert str(e.value) == (
        f"{tmp_path}/es/b.yaml:3: duplicate rule id 'en.isolation.move_app' "
        f"(also at {tmp_path}/en/a.yaml:3)"
    )


POLICY = """\
mode: shadow
half_life: 900
max_chars: 2048
thresholds:
  - at: 4
    require_minor: true
    actions:
      - {type: banner, banner: stay_safe_reminder, audience: minor_participants}
  - at: 8
    actions:
      - {type: capture}
      - {type: escalate, severity: medium, category: grooming}
settings:
  stage_bonus: 1.5
  decay: {isolation: 600}
"""


def test_policy_yaml(tmp_path: Path) -> None:
    write(tmp_path / "policy.yaml", POLICY)
    write(tmp_path / "en" / "isolation.yaml", RULE)
    policy = load_policy(tmp_path)
    assert policy.mode is Mode.SHADOW
    assert policy.half_life == 900
    assert policy.max_chars == 2048
    assert [t.at for t in policy.thresholds] == [4, 8]
    assert policy.thresholds[0].require_minor
    assert policy.thresholds[0].actions[0].params == {
        "banner": "stay_safe_reminder",
        "audience": "minor_participants",
    }
    assert policy.thresholds[1].actions[0].type is ActionType.CAPTURE
    assert policy.thresholds[1].actions[0].params == {"before": 20, "after": 5}
    assert policy.settings == {"stage_bonus": 1.5, "decay": {"isolation": 600}}


def test_defaults_without_policy_yaml(tmp_path: Path) -> None:
    write(tmp_path / "en" / "isolation.yaml", RULE)
    policy = load_policy(tmp_path)
    assert (policy.mode, policy.half_life, policy.max_chars) == (Mode.ENFORCE, 1800, 4096)
    assert policy.thresholds == ()
    assert policy.settings == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "thresholds:\n  - {at: 8, actions: [{type: capture}]}\n"
            "  - {at: 4, actions: [{type: capture}]}\n",
            ["3: thresholds must ascend: 'at' 4 comes after 8"],
        ),
        (
            "thresholds:\n  - {at: 4, actions: [{type: shout}]}\n",
            [
                "2: unknown action type 'shout' (allowed: banner, hold, redact, block, "
                "capture, escalate)"
            ],
        ),
        ("thresholds:\n  - {at: 4}\n", ["2: a threshold is missing 'actions'"]),
        ("thresholds:\n  - {at: 4, actions: []}\n", ["2: 'actions' is empty"]),
        (
            "thresholds:\n  - {at: 4, actions: [{type: capture}], require_minor: maybe}\n",
            ["2: 'require_minor' must be true or false"],
        ),
        ("half_life: 0\n", ["1: 'half_life' must be at least 1"]),
        ("max_chars: 100000000\n", ["1: 'max_chars' must be a whole number from 1 to 65536"]),
        ("settings: [1, 2]\n", ["1: 'settings' must be a mapping, not a list"]),
    ],
)
def test_policy_yaml_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    write(tmp_path / "policy.yaml", text)
    write(tmp_path / "en" / "isolation.yaml", RULE)
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path)
    assert [str(i) for i in e.value.errors] == [f"{tmp_path}/policy.yaml:{x}" for x in expected]


def test_pack_level_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not a directory"):
        load_policy(tmp_path / "missing")
    with pytest.raises(PolicyError, match=r"no rule files \(\*\.yaml\) found"):
        load_policy(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(b"language: en\nrules: \xff\n")
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path)
    assert str(e.value) == f"{tmp_path}/bad.yaml:2: not UTF-8 text"


def test_file_discovery_and_rule_order(tmp_path: Path) -> None:
    for rel, rule_id in [("es/b.yaml", "es.b"), ("en/z.yaml", "en.z"), ("en/a.yaml", "en.a")]:
        write(tmp_path / rel, RULE.replace("en.isolation.move_app", rule_id))
    write(tmp_path / "README.yaml", "not: a rule file")
    write(tmp_path / ".drafts" / "x.yaml", "not: a rule file")
    write(tmp_path / "notes.txt", "ignored")
    policy = load_policy(tmp_path)
    assert [r.id for r in policy.rules] == ["en.a", "en.z", "es.b"]
    assert policy.rules[0].file == str(tmp_path / "en" / "a.yaml")
    assert policy.rules[0].line == 3


def test_function_words_are_folded_and_gathered_by_language(tmp_path: Path) -> None:
    write(tmp_path / "pl" / "language.yaml", "language: pl\nfunction_words: [Się, że, nie]\n")
    write(tmp_path / "pt" / "language.yaml", "language: pt-br\nfunction_words: [você]\n")
    write(tmp_path / "pt" / "more.yaml", "language: pt\nfunction_words: [não]\n")
    write(tmp_path / "en" / "rules.yaml", RULE)
    policy = load_policy(tmp_path)
    assert [r.id for r in policy.rules] == ["en.isolation.move_app"]
    assert policy.function_words == {
        "pl": frozenset({"sie", "ze", "nie"}),
        "pt": frozenset({"voce", "nao"}),
    }


def test_full_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path / "rules.yaml",
        """\
        language: en
        rules:
          - id: en.isolation.move_app
            description: Asks to continue the conversation on another app
            signal: isolation
            weight: 3
            patterns:
              - phrase: Add  me on SNAP
              - regex: '\\b(add|text) me on (snap(chat)?|kik)\\b'
              - words: [snapchat, whatsapp]
                fuzzy: 1
            unless:
              - phrase: deleted snapchat
            signal_unless:
              - phrase: if someone asks
            scope:
              origins: both
              where: direct
              sender_age: [adult, unknown]
              recipient_age: [minor]
              exempt_roles: []
            actions:
              - {type: banner, banner: off_platform_warning, audience: recipients}
              - {type: redact}
            mode: shadow
            examples:
              match: [add me on snap, "yes"]
              no_match: [I deleted snapchat last year]
        """,
    )
    (rule,) = load_rule_file(path)
    assert rule.signal is Signal.ISOLATION
    assert rule.weight == 3
    assert rule.languages == {"en"}
    assert [(p.kind, p.literal, p.line) for p in rule.patterns] == [
        (PatternKind.PHRASE, "add me on snap", 8),
        (PatternKind.REGEX, None, 9),
        (PatternKind.WORD, "snapchat", 10),
        (PatternKind.WORD, "whatsapp", 10),
    ]
    assert rule.patterns[0].expression == r"\badd\s+me\s+on\s+snap\b"
    assert rule.patterns[2].expression == r"\m(?:snapchat){e<=1}\M"
    assert rule.unless[0].literal == "deleted snapchat"
    assert rule.signal_unless[0].literal == "if someone asks"
    assert rule.scope.origins == {"client", "upstream"}
    assert rule.scope.where is Where.DIRECT
    assert rule.scope.sender_age == {"adult", "unknown"}
    assert rule.scope.recipient_age == {"minor"}
    assert rule.scope.exempt_roles == frozenset()
    assert rule.actions[1].params == {"mask": "█"}
    assert rule.mode is Mode.SHADOW
    assert rule.examples_match == ("add me on snap", "yes")  # "yes" stays text
    assert rule.examples_no_match == ("I deleted snapchat last year",)


@pytest.mark.parametrize(
    ("written", "literal"),
    [
        ("Zdjęcie", "zdjecie"),
        ("add  me", "add me"),
        ("  ADD Me  ", "add me"),
        ("pleeeease", "pleease"),
        ("cool", "cool"),
        ("s.n.a.p", "snap"),
        ("аdd me on ѕnаp", "add me on snap"),
        ("📸", "emoji_camera"),
        ("Straße", "strasse"),
    ],
)
def test_phrases_are_normalised_like_messages(written: str, literal: str) -> None:
    assert literal_pattern(written).literal == literal


def test_expressions() -> None:
    assert literal_pattern("18+").expression == r"\b18\+"
    assert literal_pattern("add me", fuzzy=1).expression == r"\m(?:add\s+me){e<=1}\M"
    assert regex_pattern(r"\bsnap\b").expression == r"\bsnap\b"
    with pytest.raises(ValueError, match="fuzzy: 2 needs at least 7 letters"):
        literal_pattern("snap me", fuzzy=2)


def test_version_follows_content(tmp_path: Path) -> None:
    rules = write(tmp_path / "en" / "a.yaml", RULE)
    first = load_policy(tmp_path).version
    assert len(first) == 64
    assert load_policy(tmp_path).version == first

    rules.write_text(RULE.replace("Asks to", "Asks them to"), encoding="utf-8")
    changed = load_policy(tmp_path).version
    assert changed != first

    policy = write(tmp_path / "policy.yaml", "half_life: 1800\n")
    with_policy = load_policy(tmp_path).version
    assert with_policy != changed
    policy.write_text("half_life: 1800 # same value\n", encoding="utf-8")
    assert load_policy(tmp_path).version != with_policy

    write(tmp_path / "es" / "b.yaml", RULE.replace("en.isolation", "es.isolation"))
    assert load_policy(tmp_path).version not in (first, changed, with_policy)

    # Only relative paths count: the same pack elsewhere has the same version.
    other = tmp_path.parent / (tmp_path.name + "-copy")
    for path in sorted(tmp_path.rglob("*.yaml")):
        write(other / path.relative_to(tmp_path), path.read_text(encoding="utf-8"))
    assert load_policy(other).version == load_policy(tmp_path).version

    # Renaming a file changes it.
    (other / "es" / "b.yaml").rename(other / "es" / "c.yaml")
    assert load_policy(other).version != load_policy(tmp_path).version


def test_readme_example_loads(tmp_path: Path) -> None:
    readme = Path(__file__).parent.parent / "policies" / "README.md"
    blocks = readme.read_text(encoding="utf-8").split("```yaml\n")[1:]
    rule_file, policy_file = (b.split("```")[0] for b in blocks[:2])
    write(tmp_path / "en" / "isolation.yaml", rule_file)
    write(tmp_path / "policy.yaml", policy_file)
    policy = load_policy(tmp_path)
    assert [r.id for r in policy.rules] == ["en.isolation.move_app"]
    assert [t.at for t in policy.thresholds] == [4, 8]


# --- The signal model in a pack ------------------------------------------------------

MODEL = (
    f'{{"format": 1, "features": {FEATURES}, "signals": ["image_request"], "bias": [-1.0], '
    '"thresholds": [0.0], "weights": {"w:foto": [[0, 2.0]]}}\n'
)


def test_a_packs_signal_model_and_how_it_is_used(tmp_path: Path) -> None:
    write(tmp_path / "en" / "isolation.yaml", RULE)
    write(tmp_path / "signal_model" / "examples" / "en.yaml", "examples: {}\n")  # not rules
    write(tmp_path / "signal_model" / "model.json", MODEL)
    without_settings = load_policy(tmp_path)
    assert without_settings.signal_model is not None
    assert without_settings.signal_model.signals == (Signal.IMAGE_REQUEST,)
    assert without_settings.model_use.enabled
    assert without_settings.model_use.weight == 1.0
    assert [r.id for r in without_settings.rules] == ["en.isolation.move_app"]

    write(
        tmp_path / "policy.yaml",
        """\
        signal_model:
          mode: shadow
          weight: 0.5
          weights: {image_request: 2}
          triggers: false
        """,
    )
    policy = load_policy(tmp_path)
    use = policy.model_use
    assert (use.mode, use.weight, use.triggers) == (Mode.SHADOW, 0.5, False)
    assert use.weight_of(Signal.IMAGE_REQUEST) == 2
    assert use.weight_of(Signal.MEETING) == 0.5
    assert policy.version != without_settings.version

    write(tmp_path / "policy.yaml", "signal_model: {mode: off}\n")
    assert not load_policy(tmp_path).model_use.enabled


def test_the_model_file_is_part_of_the_packs_version(tmp_path: Path) -> None:
    write(tmp_path / "en" / "isolation.yaml", RULE)
    write(tmp_path / "signal_model" / "model.json", MODEL)
    before = load_policy(tmp_path).version
    write(tmp_path / "signal_model" / "model.json", MODEL.replace("2.0", "3.0"))
    assert load_policy(tmp_path).version != before


@pytest.mark.parametrize(
    ("policy_yaml", "model", "expected"),
    [
        (
            "signal_model: {mode: loud}\n",
            MODEL,
            "policy.yaml:1: unknown signal_model.mode 'loud' (allowed: enforce, shadow, off)",
        ),
        (
            "signal_model: {weights: {imagerequest: 1}}\n",
            MODEL,
            "policy.yaml:1: unknown key 'imagerequest' in signal_model.weights "
            "(did you mean 'image_request'?)",
        ),
        (
            "signal_model: {weight: 1}\n",
            None,
            "policy.yaml: 'signal_model' is set but signal_model/model.json is missing",
        ),
        (None, "[1, 2]\n", "signal_model/model.json: a model file must hold a JSON object"),
        (None, "{", "signal_model/model.json: not JSON"),
    ],
)
def test_signal_model_errors(
    tmp_path: Path, policy_yaml: str | None, model: str | None, expected: str
) -> None:
    write(tmp_path / "en" / "isolation.yaml", RULE)
    if policy_yaml is not None:
        write(tmp_path / "policy.yaml", policy_yaml)
    if model is not None:
        write(tmp_path / "signal_model" / "model.json", model)
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path)
    assert str(e.value).startswith(f"{tmp_path}/{expected}")


def test_a_rule_may_say_it_does_not_trigger(tmp_path: Path) -> None:
    text = RULE.replace("signal: isolation", "signal: safeguarding").replace(
        "    patterns:", "    trigger: false\n    patterns:"
    )
    (tmp_path / "r.yaml").write_text(text)
    (rule,) = load_policy(tmp_path).rules
    assert rule.trigger is False
    (tmp_path / "r.yaml").write_text(RULE)
    assert load_policy(tmp_path).rules[0].trigger is True
