"""Loading a policy pack: YAML rule files in, a validated ``Policy`` out.

The file format is ``policies/README.md``; this module is its one reader.
``load_policy(directory)`` reads ``policy.yaml`` (optional) and every other
``*.yaml`` file below the directory, in sorted order of relative path,
skipping hidden files and folders and files named ``README*``.
``load_rule_file(path)`` reads one rule file.

Invariants:

* All or nothing: every problem in every file is collected, and any problem
  refuses the whole pack with one ``PolicyError`` whose lines read
  ``file:line: reason`` (``file: reason`` for a problem with a whole file).
* Phrases and words are normalised and folded by the same ``normalise`` as
  messages, so a rule written "Zdjęcie" or "add  me" matches what the
  normaliser makes of a message ("zdjecie", "add me"); runs of a letter are
  squeezed the same way. Regexes go through ``safety.check_regex``.
* ``Policy.version`` is the SHA-256 of the sorted (relative path, bytes) of
  every file read, so it changes when any of them does.

It reads files and nothing else: no clock, no network, no global state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import regex  # type: ignore[import-untyped, unused-ignore]
import yaml

from chatguard.policy import safety
from chatguard.policy.language import base_language
from chatguard.policy.model import (
    Action,
    ActionType,
    Audience,
    Mode,
    ModelUse,
    Pattern,
    PatternKind,
    Policy,
    Rule,
    Scope,
    Signal,
    Threshold,
    Where,
)
from chatguard.policy.normalise import normalise
from chatguard.policy.safety_cache import SafetyCache
from chatguard.policy.signal_model import LEARNABLE, ModelError
from chatguard.policy.signal_model import loads as model_from_bytes
from chatguard.policy.yaml_reader import PolicyError as PolicyError
from chatguard.policy.yaml_reader import PolicyIssue as PolicyIssue
from chatguard.policy.yaml_reader import Reader, kind, suggest

POLICY_FILE = "policy.yaml"
MODEL_DIR = "signal_model"  # the signal model's examples and model.json; not rule files
MODEL_FILE = "signal_model/model.json"
SEVERITIES = ("low", "medium", "high", "critical")
ORIGINS = ("client", "upstream")
AGE_BANDS = ("minor", "adult", "unknown")
MAX_FUZZY = 3
MAX_CONTEXT = 200  # capture before/after, in messages
MAX_CHARS_LIMIT = 65_536
_ID_RE = regex.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
_LANGUAGE_RE = regex.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_WORD_CHAR_RE = regex.compile(r"\w")


# --- Patterns ------------------------------------------------------------------------


def literal_pattern(
    text: str, kind: PatternKind = PatternKind.PHRASE, *, fuzzy: int = 0, line: int = 0
) -> Pattern:
    """A phrase or word pattern; raises ``ValueError`` with the reason when
    ``text`` cannot be one."""
    folded = normalise(text, max_chars=len(text)).folded
    if not folded:
        raise ValueError(f"{kind.value} {text!r} is empty once normalised")
    if kind is PatternKind.WORD and " " in folded:
        raise ValueError(f"word {text!r} has a space: use phrase")
    if not 0 <= fuzzy <= MAX_FUZZY:
        raise ValueError(f"'fuzzy' must be between 0 and {MAX_FUZZY}")
    letters = len(folded.replace(" ", ""))
    if fuzzy and letters < 2 * fuzzy + 3:
        raise ValueError(
            f"fuzzy: {fuzzy} needs at least {2 * fuzzy + 3} letters; {folded!r} has {letters}"
        )
    body = r"\s+".join(regex.escape(w, special_only=True) for w in folded.split(" "))
    # Word edges: \b; with fuzzy, \m and \M (start and end of a word), so that
    # an "inserted" space or dot never joins the match.
    left, right = (r"\m", r"\M") if fuzzy else (r"\b", r"\b")
    if fuzzy:
        body = f"(?:{body}){{e<={fuzzy}}}"
    left = left if _WORD_CHAR_RE.match(folded[0]) else ""
    right = right if _WORD_CHAR_RE.match(folded[-1]) else ""
    return Pattern(kind, text, left + body + right, folded, fuzzy, line)


def regex_pattern(source: str, *, line: int = 0, verdicts: SafetyCache | None = None) -> Pattern:
    """A regex pattern, checked by ``safety.check_regex`` and for characters
    a normalised message never holds; raises ``ValueError`` with the reason.

    With ``verdicts``, a regex accepted before (same text, same checking
    code) is accepted without the checks, and one accepted now is
    remembered; a refused regex is checked again every time."""
    if verdicts is not None and verdicts.known_safe(source):
        return Pattern(PatternKind.REGEX, source, source, None, 0, line)
    root = safety.check_regex(source)
    for node in safety.walk(root):
        ch = node.literal if isinstance(node, safety.CharSet) else None
        if ch is None or ch.isspace():
            continue
        folded = normalise(ch).folded
        if folded != ch:
            shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
            hint = f": write {folded!r}" if folded else ""
            raise ValueError(f"regex has {shown!r}, which normalised messages never hold{hint}")
    if verdicts is not None:
        verdicts.add(source)
    return Pattern(PatternKind.REGEX, source, source, None, 0, line)


# --- Actions ------------------------------------------------------------------------

# Per action type: parameter -> (required, reader, default).
_Param = tuple[bool, Callable[[Reader, yaml.Node, str], Any], Any]


def _text(r: Reader, n: yaml.Node, what: str) -> Any:
    return r.text(n, what)


def _context(r: Reader, n: yaml.Node, what: str) -> Any:
    return r.integer(n, what, 0, MAX_CONTEXT)


def _one_of(values: Sequence[str]) -> Callable[[Reader, yaml.Node, str], Any]:
    return lambda r, n, what: r.choice(n, what, values)


_ACTION_PARAMS: Mapping[ActionType, Mapping[str, _Param]] = {
    ActionType.BANNER: {
        "banner": (True, _text, None),
        "audience": (True, _one_of([a.value for a in Audience]), None),
    },
    ActionType.HOLD: {"banner": (True, _text, None)},
    ActionType.REDACT: {"mask": (False, _text, "█")},
    ActionType.BLOCK: {"notice": (False, _text, None)},
    ActionType.CAPTURE: {"before": (False, _context, 20), "after": (False, _context, 5)},
    ActionType.ESCALATE: {
        "severity": (True, _one_of(SEVERITIES), None),
        "category": (False, _text, None),
    },
}


def _actions(r: Reader, node: yaml.Node) -> tuple[Action, ...] | None:
    out: list[Action] = []
    ok = True
    for item in r.items(node, "actions"):
        if not isinstance(item, yaml.MappingNode):
            r.error(item, f"an action must be a mapping, not {kind(item)}")
            ok = False
            continue
        keys = {k.value: v for k, v in item.value if isinstance(k, yaml.ScalarNode)}
        if "type" not in keys:
            r.error(item, "action is missing 'type'")
            ok = False
            continue
        type_ = r.member(keys["type"], "action type", ActionType)
        if type_ is None:
            ok = False
            continue
        spec = _ACTION_PARAMS[type_]
        fields = r.mapping(item, f"a {type_.value} action", ["type", *spec])
        if fields is None:
            ok = False
            continue
        params: dict[str, Any] = {}
        for name, (required, read, default) in spec.items():
            if name in fields:
                value = read(r, fields[name], name)
                ok = ok and value is not None
                params[name] = value
            elif required:
                r.error(item, f"a {type_.value} action is missing {name!r}")
                ok = False
            elif default is not None:
                params[name] = default
        out.append(Action(type_, params))
    return tuple(out) if ok else None


# --- Rule files -----------------------------------------------------------------------

_FILE_KEYS = ("language", "rules", "function_words")
_RULE_KEYS = (
    "id",
    "description",
    "signal",
    "languages",
    "patterns",
    "unless",
    "signal_unless",
    "weight",
    "scope",
    "actions",
    "mode",
    "examples",
    "yes_means",
    "declares_recipient",
    "declares_sender",
    "trigger",
)
_RULE_REQUIRED = ("id", "description", "signal", "patterns")
_PATTERN_KEYS = ("phrase", "words", "regex", "fuzzy")
_SCOPE_KEYS = ("origins", "where", "sender_age", "recipient_age", "exempt_roles")
_RULE_SIGNALS = [s.value for s in Signal if s is not Signal.EVASION]
# What a yes to a rule's question may mean (chatguard/policy/pending.py).
_YES_MEANS = [Signal.MINOR_SELF.value, Signal.ADULT_SELF.value]
# The signals whose matches escalate at once (``engine._triggers``).
_TRIGGERING = [Signal.SEXTORTION.value, Signal.SAFEGUARDING.value]


def _patterns(
    r: Reader,
    node: yaml.Node,
    what: str,
    *,
    empty_ok: bool,
    verdicts: SafetyCache | None = None,
) -> list[Pattern] | None:
    out: list[Pattern] = []
    ok = True
    for item in r.items(node, what, empty_ok=empty_ok):
        fields = r.mapping(item, "a pattern", _PATTERN_KEYS)
        if fields is None:
            ok = False
            continue
        kinds = [k for k in ("phrase", "words", "regex") if k in fields]
        if len(kinds) != 1:
            r.error(item, "a pattern needs exactly one of 'phrase', 'words' or 'regex'")
            ok = False
            continue
        kind = kinds[0]
        fuzzy = 0
        if "fuzzy" in fields:
            if kind == "regex":
                r.error(fields["fuzzy"], "'fuzzy' works with phrase and words, not regex")
                ok = False
                continue
            got = r.integer(fields["fuzzy"], "fuzzy", 0, MAX_FUZZY)
            if got is None:
                ok = False
                continue
            fuzzy = got
        sources: list[tuple[yaml.Node, str | None]]
        if kind == "words":
            words = fields["words"]
            nodes = r.items(words, "words") if not isinstance(words, yaml.ScalarNode) else [words]
            sources = [(n, r.text(n, "words")) for n in nodes]
        else:
            sources = [(fields[kind], r.text(fields[kind], kind))]
        for src_node, src in sources:
            if src is None:
                ok = False
                continue
            line = src_node.start_mark.line + 1
            try:
                if kind == "regex":
                    out.append(regex_pattern(src, line=line, verdicts=verdicts))
                else:
                    pk = PatternKind.WORD if kind == "words" else PatternKind.PHRASE
                    out.append(literal_pattern(src, pk, fuzzy=fuzzy, line=line))
            except ValueError as e:
                r.error(line, str(e))
                ok = False
    return out if ok else None


def _scope(r: Reader, node: yaml.Node) -> Scope | None:
    fields = r.mapping(node, "scope", _SCOPE_KEYS)
    if fields is None:
        return None
    before = len(r.issues)
    scope = Scope()
    if "origins" in fields:
        names = r.texts(fields["origins"], "origins")
        bad = [n for n in names if n not in (*ORIGINS, "both")]
        for n in bad:
            r.error(fields["origins"], f"unknown origin {n!r} ({suggest(n, [*ORIGINS, 'both'])})")
        expanded = {o for n in names for o in (ORIGINS if n == "both" else (n,))}
        scope = _replace(scope, origins=frozenset(expanded))
    if "where" in fields:
        where = r.member(fields["where"], "'where' value", Where)
        scope = _replace(scope, where=where or Where.ANY)
    for key in ("sender_age", "recipient_age"):
        if key in fields:
            bands = r.texts(fields[key], key)
            for b in bands:
                if b not in AGE_BANDS:
                    r.error(fields[key], f"unknown age band {b!r} ({suggest(b, AGE_BANDS)})")
            scope = _replace(scope, **{key: frozenset(bands)})
    if "exempt_roles" in fields:
        roles = r.texts(fields["exempt_roles"], "exempt_roles", empty_ok=True)
        scope = _replace(scope, exempt_roles=frozenset(roles))
    return scope if len(r.issues) == before else None


def _replace(scope: Scope, **changes: Any) -> Scope:
    values = {name: getattr(scope, name) for name in _SCOPE_KEYS}
    values.update(changes)
    return Scope(**values)


def _flag(
    r: Reader,
    fields: Mapping[str, yaml.Node],
    name: str,
    default: bool,
    allowed: bool,
    reason: str,
) -> bool | None:
    """An optional true/false key: ``default`` when it is absent. The other
    value is for some rules only: where it is not ``allowed``, ``reason`` is
    the error. ``None`` when the value is not a boolean (already reported)."""
    if name not in fields:
        return default
    value = r.boolean(fields[name], name)
    if value is (not default) and not allowed:
        r.error(fields[name], reason)
    return value


def _rule(
    r: Reader, node: yaml.Node, language: str | None, verdicts: SafetyCache | None = None
) -> tuple[str | None, Rule | None]:
    """(id, rule); the rule is None when it has problems (all reported)."""
    before = len(r.issues)
    fields = r.mapping(node, "a rule", _RULE_KEYS, _RULE_REQUIRED)
    if fields is None:
        return None, None
    rule_id = r.text(fields["id"], "id") if "id" in fields else None
    if rule_id is not None and not _ID_RE.fullmatch(rule_id):
        r.error(fields["id"], f"rule id {rule_id!r} may hold only letters, digits and _ . : -")
    description = r.text(fields["description"], "description") if "description" in fields else ""
    signal = None
    if "signal" in fields:
        node_ = fields["signal"]
        if isinstance(node_, yaml.ScalarNode) and node_.value == Signal.EVASION.value:
            r.error(node_, "signal 'evasion' is set by the normaliser, not by rules")
        else:
            signal = r.choice(node_, "signal", _RULE_SIGNALS)
    if "languages" in fields:
        languages = r.texts(fields["languages"], "languages")
        for code in languages:
            if not _LANGUAGE_RE.fullmatch(code):
                r.error(fields["languages"], f"{code!r} is not a language code such as en or pt-br")
    elif language is not None:
        languages = [language]
    else:
        r.error(node, "rule has no language: set 'language' at the top of the file or 'languages'")
        languages = []
    patterns = (
        _patterns(r, fields["patterns"], "patterns", empty_ok=False, verdicts=verdicts)
        if "patterns" in fields
        else []
    )
    unless = (
        _patterns(r, fields["unless"], "unless", empty_ok=True, verdicts=verdicts)
        if "unless" in fields
        else []
    )
    signal_unless = (
        _patterns(r, fields["signal_unless"], "signal_unless", empty_ok=True, verdicts=verdicts)
        if "signal_unless" in fields
        else []
    )
    weight = r.number(fields["weight"], "weight") if "weight" in fields else 1.0
    scope = _scope(r, fields["scope"]) if "scope" in fields else Scope()
    actions = _actions(r, fields["actions"]) if "actions" in fields else ()
    mode = r.member(fields["mode"], "mode", Mode) if "mode" in fields else None
    yes_means = (
        r.choice(fields["yes_means"], "yes_means", _YES_MEANS) if "yes_means" in fields else None
    )
    declares_recipient = _flag(
        r,
        fields,
        "declares_recipient",
        False,
        signal in _YES_MEANS,
        f"declares_recipient needs a signal of {' or '.join(_YES_MEANS)} (an age declaration)",
    )
    declares_sender = _flag(
        r,
        fields,
        "declares_sender",
        True,
        bool(declares_recipient),
        "declares_sender: false needs declares_recipient: true"
        " (a declaration that speaks for nobody declares nothing)",
    )
    trigger = _flag(
        r,
        fields,
        "trigger",
        True,
        signal in _TRIGGERING,
        f"trigger: false is for a rule whose signal is {' or '.join(_TRIGGERING)}"
        " (the signals that escalate at once)",
    )
    matches, no_matches = _examples(r, node, fields.get("examples"))
    if (
        len(r.issues) > before
        or not (rule_id and description and signal and patterns)
        or unless is None
        or signal_unless is None
        or weight is None
        or scope is None
        or actions is None
    ):
        return rule_id, None
    rule = Rule(
        id=rule_id,
        description=description,
        signal=Signal(signal),
        languages=frozenset(languages),
        patterns=tuple(patterns),
        scope=scope,
        weight=weight,
        actions=actions,
        mode=mode,
        unless=tuple(unless),
        signal_unless=tuple(signal_unless),
        yes_means=Signal(yes_means) if yes_means else None,
        declares_recipient=bool(declares_recipient),
        declares_sender=declares_sender is not False,
        trigger=trigger is not False,
        examples_match=tuple(matches),
        examples_no_match=tuple(no_matches),
        file=r.file,
        line=node.start_mark.line + 1,
    )
    return rule_id, rule


def _examples(r: Reader, rule: yaml.Node, node: yaml.Node | None) -> tuple[list[str], list[str]]:
    fields = r.mapping(node, "examples", ("match", "no_match")) if node is not None else {}
    if fields is None:
        return [], []
    if "match" not in fields:
        r.error(node or rule, "rule has no examples.match: add at least one message it must match")
        return [], []
    matches = r.texts(fields["match"], "match")
    no_matches = (
        r.texts(fields["no_match"], "no_match", empty_ok=True) if "no_match" in fields else []
    )
    return matches, no_matches


def _rule_file(
    r: Reader,
    text: str,
    seen: dict[str, tuple[str, int]],
    verdicts: SafetyCache | None = None,
    words: dict[str, set[str]] | None = None,
) -> list[Rule]:
    root = r.compose(text)
    if root is None:
        if not r.issues:
            r.error(0, "file is empty: a rule file needs 'rules'")
        return []
    fields = r.mapping(root, "a rule file", _FILE_KEYS)
    if fields is None:
        return []
    if "rules" not in fields and "function_words" not in fields:
        r.error(root, "a rule file is missing 'rules'")
    language = r.text(fields["language"], "language") if "language" in fields else None
    if language is not None and not _LANGUAGE_RE.fullmatch(language):
        r.error(fields["language"], f"{language!r} is not a language code such as en or pt-br")
    if "function_words" in fields:
        _function_words(r, fields["function_words"], language, words)
    rules: list[Rule] = []
    for node in r.items(fields["rules"], "rules") if "rules" in fields else []:
        rule_id, rule = _rule(r, node, language, verdicts)
        if rule_id is not None:
            line = node.start_mark.line + 1
            if rule_id in seen:
                file, first = seen[rule_id]
                r.error(line, f"duplicate rule id {rule_id!r} (also at {file}:{first})")
            else:
                seen[rule_id] = (r.file, line)
        if rule is not None:
            rules.append(rule)
    return rules


def _function_words(
    r: Reader, node: yaml.Node, language: str | None, words: dict[str, set[str]] | None
) -> None:
    """A language's function words (``language.py``), folded as messages are."""
    if language is None:
        r.error(node, "'function_words' needs the file's 'language'")
        return
    found: set[str] = set()
    for item in r.items(node, "function_words"):
        text = r.text(item, "a function word")
        if text is None:
            continue
        folded = normalise(text).folded
        if not folded or not folded.isalnum():
            r.error(item, f"{text!r} is not one word")
        else:
            found.add(folded)
    if words is not None:
        words.setdefault(base_language(language), set()).update(found)


# --- policy.yaml --------------------------------------------------------------------

_POLICY_KEYS = ("mode", "half_life", "max_chars", "thresholds", "settings", "signal_model")
_THRESHOLD_KEYS = ("at", "actions", "require_minor")
_MODEL_KEYS = ("mode", "weight", "weights", "triggers", "trigger_at")


def _model_use(r: Reader, node: yaml.Node) -> ModelUse | None:
    fields = r.mapping(node, "signal_model", _MODEL_KEYS)
    if fields is None:
        return None
    out: dict[str, Any] = {}
    if "mode" in fields:
        mode = r.choice(fields["mode"], "signal_model.mode", ("enforce", "shadow", "off"))
        if mode == "off":
            out["enabled"] = False
        elif mode is not None:
            out["mode"] = Mode(mode)
    if "weight" in fields:
        out["weight"] = r.number(fields["weight"], "signal_model.weight")
    if "weights" in fields:
        weights: dict[Signal, float] = {}
        per = r.mapping(fields["weights"], "signal_model.weights", [s.value for s in LEARNABLE])
        for name, value in (per or {}).items():
            w = r.number(value, f"signal_model.weights.{name}")
            if w is not None:
                weights[Signal(name)] = w
        out["weights"] = weights
    if "triggers" in fields:
        out["triggers"] = r.boolean(fields["triggers"], "signal_model.triggers")
    if "trigger_at" in fields:
        at = r.number(fields["trigger_at"], "signal_model.trigger_at")
        if at is not None and not 0.5 <= at <= 1:
            r.error(fields["trigger_at"], "'signal_model.trigger_at' must be from 0.5 to 1")
        else:
            out["trigger_at"] = at
    return ModelUse(**{k: v for k, v in out.items() if v is not None})


def _policy_settings(r: Reader, text: str | None) -> dict[str, Any]:
    """The keyword arguments of ``Policy`` that ``policy.yaml`` sets."""
    root = r.compose(text) if text is not None else None
    if root is None:
        return {}
    fields = r.mapping(root, "policy.yaml", _POLICY_KEYS)
    if fields is None:
        return {}
    out: dict[str, Any] = {}
    if "mode" in fields:
        out["mode"] = r.member(fields["mode"], "mode", Mode)
    if "half_life" in fields:
        out["half_life"] = r.number(fields["half_life"], "half_life", minimum=1.0)
    if "max_chars" in fields:
        out["max_chars"] = r.integer(fields["max_chars"], "max_chars", 1, MAX_CHARS_LIMIT)
    if "settings" in fields:
        if isinstance(fields["settings"], yaml.MappingNode):
            out["settings"] = r.value(fields["settings"])
        else:
            r.error(
                fields["settings"], f"'settings' must be a mapping, not {kind(fields['settings'])}"
            )
    if "signal_model" in fields:
        out["model_use"] = _model_use(r, fields["signal_model"])
    thresholds: list[Threshold] = []
    last: float | None = None
    for node in r.items(fields["thresholds"], "thresholds") if "thresholds" in fields else []:
        t = r.mapping(node, "a threshold", _THRESHOLD_KEYS, ("at", "actions"))
        if t is None or "at" not in t or "actions" not in t:
            continue
        at = r.number(t["at"], "at")
        actions = _actions(r, t["actions"])
        minor = r.boolean(t["require_minor"], "require_minor") if "require_minor" in t else False
        if at is not None and last is not None and at <= last:
            r.error(t["at"], f"thresholds must ascend: 'at' {at:g} comes after {last:g}")
        last = at if at is not None else last
        if at is not None and actions is not None and minor is not None:
            thresholds.append(Threshold(at, actions, minor))
    out["thresholds"] = tuple(thresholds)
    return out


# --- The pack ------------------------------------------------------------------------


def _read(path: Path, shown: str, issues: list[PolicyIssue]) -> tuple[bytes, str] | None:
    try:
        data = path.read_bytes()
    except OSError as e:
        issues.append(PolicyIssue(shown, 0, f"cannot read: {e.strerror or e}"))
        return None
    try:
        return data, data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        issues.append(PolicyIssue(shown, line, "not UTF-8 text"))
        return None


def _rule_paths(directory: Path) -> list[Path]:
    paths = []
    for path in directory.rglob("*.yaml"):
        rel = path.relative_to(directory)
        if (
            rel.as_posix() == POLICY_FILE
            or rel.parts[0] == MODEL_DIR
            or any(part.startswith(".") for part in rel.parts)
            or path.name.lower().startswith("readme")
            or not path.is_file()
        ):
            continue
        paths.append(rel)
    return sorted(paths, key=lambda p: p.as_posix())


def load_rule_file(path: Path) -> tuple[Rule, ...]:
    """The rules of one file; raises ``PolicyError`` listing every problem."""
    issues: list[PolicyIssue] = []
    read = _read(path, str(path), issues)
    rules = _rule_file(Reader(str(path), issues), read[1], {}) if read else []
    if issues:
        raise PolicyError(sorted(issues, key=lambda i: i.line))
    return tuple(rules)


def load_policy(directory: Path, *, cache_dir: Path | None = None) -> Policy:
    """The pack in ``directory``; raises ``PolicyError`` listing every problem.

    With ``cache_dir`` (the directory that also holds the compiled Hyperscan
    database), regex safety verdicts are remembered there
    (``safety_cache``), so a second load of the same patterns skips the
    CPU-time probes; what is accepted or refused is the same either way."""
    verdicts = SafetyCache(cache_dir) if cache_dir is not None else None
    issues: list[PolicyIssue] = []
    if not directory.is_dir():
        raise PolicyError([PolicyIssue(str(directory), 0, "not a directory")])
    digest = hashlib.sha256()
    settings: dict[str, Any] = {}
    policy_path = directory / POLICY_FILE
    if policy_path.is_file():
        read = _read(policy_path, str(policy_path), issues)
        if read is not None:
            _hash(digest, POLICY_FILE, read[0])
            settings = _policy_settings(Reader(str(policy_path), issues), read[1])
    paths = _rule_paths(directory)
    if not paths:
        issues.append(PolicyIssue(str(directory), 0, "no rule files (*.yaml) found"))
    rules: list[Rule] = []
    seen: dict[str, tuple[str, int]] = {}
    words: dict[str, set[str]] = {}
    for rel in paths:
        shown = str(directory / rel)
        read = _read(directory / rel, shown, issues)
        if read is not None:
            _hash(digest, rel.as_posix(), read[0])
            rules += _rule_file(Reader(shown, issues), read[1], seen, verdicts, words)
    model_path = directory / MODEL_FILE
    if model_path.is_file():
        read_model = _read(model_path, str(model_path), issues)
        if read_model is not None:
            _hash(digest, MODEL_FILE, read_model[0])
            try:
                settings["signal_model"] = model_from_bytes(read_model[0])
            except ModelError as e:
                issues.append(PolicyIssue(str(model_path), 0, str(e)))
    elif "model_use" in settings:
        issues.append(
            PolicyIssue(str(policy_path), 0, f"'signal_model' is set but {MODEL_FILE} is missing")
        )
    if verdicts is not None:
        verdicts.save()  # the safe verdicts found, even when the pack is refused
    if issues:
        order = {file: k for k, file in enumerate(dict.fromkeys(i.file for i in issues))}
        raise PolicyError(sorted(issues, key=lambda i: (order[i.file], i.line)))
    values = {"thresholds": (), **{k: v for k, v in settings.items() if v is not None}}
    function_words = {k: frozenset(v) for k, v in sorted(words.items())}
    return Policy(
        rules=tuple(rules), version=digest.hexdigest(), function_words=function_words, **values
    )


def _hash(digest: Any, name: str, data: bytes) -> None:
    # Length-prefixed, so that no two different packs hash the same bytes.
    encoded = name.encode()
    digest.update(b"%d:%s%d:" % (len(encoded), encoded, len(data)))
    digest.update(data)


__all__ = [
    "PolicyError",
    "PolicyIssue",
    "literal_pattern",
    "load_policy",
    "load_rule_file",
    "regex_pattern",
]
