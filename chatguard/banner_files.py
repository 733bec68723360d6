"""Reading the banner catalogue from ``banners/*.yaml``.

What it owns: turning the YAML files T&S staff edit into a ``Catalogue``,
and every problem into one line ``file:line: banner: reason``.

Invariants:

* All or nothing: any problem in any file refuses the whole catalogue
  (``BannerError`` lists them all, in file order).
* A file is a banner file (top-level ``banners``) or a resource file
  (top-level ``resources``); anything else is refused.
* A file may declare ``locales``: then every text of every banner in it
  (``text``, ``adult_text``, each variant's) must have each of them.
* Reads files only; the result is a plain value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .banners import (
    EVENTS,
    FALLBACK_LOCALE,
    MEASURES,
    PLACEHOLDERS,
    Banner,
    BannerError,
    Catalogue,
    Resource,
    Trigger,
    Variant,
    placeholders,
)
from .events import Severity
from .policy.model import ActionType, Audience, Signal

_BANNER_KEYS = {
    "id",
    "purpose",
    "severity",
    "text",
    "adult_text",
    "audience",
    "trigger",
    "ages",
    "reveal_rule",
    "resources",
    "variants",
    "cap",
    "cooldown",
    "measure",
}
_RESOURCE_KEYS = {"id", "kind", "name", "contact", "url", "locales", "regions"}
_AGES = frozenset({"minor", "likely_minor", "adult", "unknown"})
_TRIGGER_ACTIONS = frozenset({ActionType.BANNER.value, ActionType.HOLD.value})
_LINE, _LINES = "__line__", "__lines__"
#: Reports one problem of the banner being read: (key, reason).
Bad = Callable[[str, str], None]


class _LineLoader(yaml.SafeLoader):
    """A safe loader that notes the line of every mapping and of each key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        mapping[_LINES] = {
            k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k.value, str)
        }
        return mapping


def _fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in (_LINE, _LINES)}


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, file: str, line: int, what: str, reason: str) -> None:
        where = f"{file}:{line}: {what}" if what else f"{file}:{line}"
        self.lines.append(f"{where}: {reason}")


def load_catalogue(directory: Path) -> Catalogue:
    problems = _Problems()
    banners: dict[str, Banner] = {}
    resources: list[Resource] = []
    resource_kinds_used: list[tuple[str, int, str, str]] = []
    all_locales: set[str] = set()
    for path in sorted(p for p in directory.rglob("*.yaml") if p.is_file()):
        shown = str(path)
        try:
            data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.add(shown, _error_line(exc), "", f"cannot load: {exc}")
            continue
        if isinstance(data, dict) and isinstance(data.get("resources"), list):
            resources.extend(_resources(data["resources"], shown, problems))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("banners"), list):
            problems.add(shown, 1, "", "expected a mapping with a `banners` list")
            continue
        locales = _file_locales(data, shown, problems)
        all_locales |= locales
        for i, spec in enumerate(data["banners"]):
            banner = _banner(spec, i, shown, data[_LINE], locales, banners, problems)
            if banner is not None:
                banners[banner.id] = banner
                for kind in banner.resources:
                    resource_kinds_used.append((shown, banner.line, banner.id, kind))
    kinds = {r.kind for r in resources}
    for shown, line, banner_id, kind in resource_kinds_used:
        if kind not in kinds:
            problems.add(shown, line, banner_id, f"no resource of kind {kind!r} in the catalogue")
    if problems.lines:
        raise BannerError("\n".join(problems.lines))
    return Catalogue(banners, tuple(resources), frozenset(all_locales))


def _error_line(exc: Exception) -> int:
    mark = getattr(exc, "problem_mark", None)
    return int(mark.line) + 1 if mark is not None else 1


def _file_locales(data: dict[str, Any], shown: str, problems: _Problems) -> frozenset[str]:
    raw = data.get("locales", [])
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        problems.add(shown, data[_LINES].get("locales", 1), "", "`locales` must list locales")
        return frozenset()
    return frozenset(raw)


def _banner(
    spec: Any,
    index: int,
    shown: str,
    file_line: int,
    locales: frozenset[str],
    seen: Mapping[str, Banner],
    problems: _Problems,
) -> Banner | None:
    if not isinstance(spec, dict):
        problems.add(shown, file_line, f"banners[{index}]", "a banner must be a mapping")
        return None
    line, lines = spec[_LINE], spec[_LINES]
    fields = _fields(spec)
    unknown = set(fields) - _BANNER_KEYS
    if unknown:
        name = sorted(unknown)[0]
        problems.add(shown, lines.get(name, line), f"banners[{index}]", f"unknown key {name!r}")
    banner_id = fields.get("id")
    if not isinstance(banner_id, str) or not banner_id:
        problems.add(shown, line, f"banners[{index}]", "`id` must be a non-empty string")
        return None

    def bad(key: str, reason: str) -> None:
        problems.add(shown, lines.get(key.split(".")[0], line), banner_id, reason)

    if banner_id in seen:
        bad("id", f"duplicate id (also in {seen[banner_id].file})")
    reveal = fields.get("reveal_rule", False)
    if not isinstance(reveal, bool):
        bad("reveal_rule", "`reveal_rule` must be true or false")
        reveal = False
    text = _texts(fields.get("text"), "text", locales, reveal, bad, required=True)
    if text is None:
        return None
    adult = _texts(fields.get("adult_text"), "adult_text", locales, reveal, bad) or {}
    try:
        severity = Severity(fields.get("severity", "info"))
    except ValueError:
        bad("severity", "`severity` must be info, warning or critical")
        return None
    audience = fields.get("audience")
    if audience is not None and audience not in {a.value for a in Audience}:
        bad("audience", f"`audience` must be one of {', '.join(a.value for a in Audience)}")
    ages = fields.get("ages")
    if ages is not None and (not isinstance(ages, list) or not set(ages) <= _AGES):
        bad("ages", f"`ages` must list age bands from {', '.join(sorted(_AGES))}")
        ages = None
    resources = fields.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        bad("resources", "`resources` must list resource kinds")
        resources = []
    cap, window = _cap(fields.get("cap"), bad)
    cooldown = fields.get("cooldown")
    if cooldown is not None and (not _number(cooldown) or cooldown < 0):
        bad("cooldown", "`cooldown` must be seconds (0 or more)")
        cooldown = None
    measure = fields.get("measure")
    if measure is not None and measure not in MEASURES:
        bad("measure", f"`measure` must be one of {', '.join(sorted(MEASURES))}")
        measure = None
    return Banner(
        banner_id,
        str(fields.get("purpose", "")),
        severity,
        text,
        shown,
        line,
        audience=audience if isinstance(audience, str) else None,
        trigger=_trigger(fields.get("trigger"), bad),
        ages=frozenset(ages) if ages is not None else None,
        reveal_rule=reveal,
        resources=tuple(resources),
        adult_text=adult,
        variants=_variants(fields.get("variants"), locales, reveal, bad),
        cap=cap,
        cap_window=window,
        cooldown=float(cooldown) if cooldown is not None else None,
        measure=measure,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _texts(
    raw: Any, key: str, locales: frozenset[str], reveal: bool, bad: Bad, required: bool = False
) -> dict[str, str] | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, dict):
        bad(key, f"`{key}` must map locales to non-empty text")
        return None
    texts = _fields(raw)
    if not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in texts.items()):
        bad(key, f"`{key}` must map locales to non-empty text")
        return None
    if FALLBACK_LOCALE not in texts:
        bad(key, f"`{key}` needs an `{FALLBACK_LOCALE}` entry")
    missing = sorted(locales - set(texts))
    if missing:
        bad(key, f"`{key}` is missing locale(s) {', '.join(missing)}")
    for locale, template in texts.items():
        try:
            names = placeholders(template)
        except ValueError as exc:
            bad(key, f"`{key}.{locale}`: bad braces ({exc}); write {{{{ for a literal brace")
            continue
        for name in names:
            if name not in PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                bad(key, f"`{key}.{locale}`: unknown placeholder {{{name}}} (known: {known})")
            elif name == "rule" and not reveal:
                bad(key, f"`{key}.{locale}`: {{rule}} needs `reveal_rule: true`")
    return dict(texts)


def _trigger(raw: Any, bad: Bad) -> Trigger:
    if raw is None:
        return Trigger()
    if not isinstance(raw, dict):
        bad("trigger", "`trigger` must be a mapping of signals, actions and events")
        return Trigger()
    fields = _fields(raw)
    unknown = set(fields) - {"signals", "actions", "events"}
    if unknown:
        bad("trigger", f"`trigger`: unknown key {sorted(unknown)[0]!r}")
    out: dict[str, frozenset[str]] = {}
    allowed = {
        "signals": frozenset(s.value for s in Signal),
        "actions": _TRIGGER_ACTIONS,
        "events": EVENTS,
    }
    for key, known in allowed.items():
        values = fields.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            bad("trigger", f"`trigger.{key}` must be a list")
            values = []
        for value in values:
            if value not in known:
                what = {"signals": "signal", "actions": "action", "events": "event"}[key]
                bad("trigger", f"`trigger.{key}`: unknown {what} {value!r}")
        out[key] = frozenset(v for v in values if v in known)
    return Trigger(out["signals"], out["actions"], out["events"])


def _cap(raw: Any, bad: Bad) -> tuple[int | None, float | None]:
    if raw is None:
        return None, None
    fields = _fields(raw) if isinstance(raw, dict) else {}
    count, window = fields.get("count"), fields.get("window")
    if (
        set(fields) != {"count", "window"}
        or not isinstance(count, int)
        or isinstance(count, bool)
        or count < 1
        or not isinstance(window, int | float)
        or isinstance(window, bool)
        or window <= 0
    ):
        bad("cap", "`cap` must be {count: N >= 1, window: seconds > 0}")
        return None, None
    return count, float(window)


def _variants(raw: Any, locales: frozenset[str], reveal: bool, bad: Bad) -> tuple[Variant, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        bad("variants", "`variants` must be a non-empty list")
        return ()
    out: list[Variant] = []
    for spec in raw:
        fields = _fields(spec) if isinstance(spec, dict) else {}
        vid, weight = fields.get("id"), fields.get("weight", 1)
        if not isinstance(vid, str) or not vid or any(v.id == vid for v in out):
            bad("variants", "each variant needs a unique non-empty `id`")
            continue
        unknown = set(fields) - {"id", "weight", "text", "adult_text"}
        if unknown:
            bad("variants", f"variant {vid}: unknown key {sorted(unknown)[0]!r}")
        if not _number(weight) or weight <= 0:
            bad("variants", f"variant {vid}: `weight` must be a positive number")
            continue
        text = _texts(fields.get("text"), f"variants.{vid}.text", locales, reveal, bad, True)
        adult = _texts(fields.get("adult_text"), f"variants.{vid}.adult_text", locales, reveal, bad)
        if text is not None:
            out.append(Variant(vid, float(weight), text, adult or {}))
    return tuple(out)


def _resources(raw: list[Any], shown: str, problems: _Problems) -> list[Resource]:
    out: list[Resource] = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict):
            problems.add(shown, 1, f"resources[{i}]", "a resource must be a mapping")
            continue
        fields, line = _fields(spec), spec[_LINE]
        rid = fields.get("id") or f"resources[{i}]"
        unknown = set(fields) - _RESOURCE_KEYS
        if unknown:
            problems.add(shown, line, str(rid), f"unknown key {sorted(unknown)[0]!r}")
        strings = [fields.get(k) for k in ("id", "kind", "name", "contact")]
        if not all(isinstance(s, str) and s.strip() for s in strings):
            problems.add(shown, line, str(rid), "`id`, `kind`, `name` and `contact` are required")
            continue
        lists = [fields.get("locales", []), fields.get("regions", [])]
        if not all(isinstance(x, list) and all(isinstance(y, str) for y in x) for x in lists):
            problems.add(shown, line, str(rid), "`locales` and `regions` must be lists")
            continue
        if not lists[0]:
            problems.add(shown, line, str(rid), "`locales` must name at least one locale")
            continue
        out.append(
            Resource(
                str(fields["id"]),
                str(fields["kind"]),
                str(fields["name"]),
                str(fields["contact"]),
                frozenset(lists[0]),
                frozenset(r.upper() for r in lists[1]),
                str(fields.get("url", "")),
            )
        )
    return out
