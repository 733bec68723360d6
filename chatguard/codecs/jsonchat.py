"""JSON-over-WebSocket chat codec, driven by a mapping file.

What it owns: compiling a mapping (``docs/jsonchat-mapping.md``) into matchers,
decoding text frames into chat events, reading the upstream's welcome frame as
an identity attestation, and rendering notices from templates.

Invariants:

* ``decode`` never raises; binary frames, non-JSON text, JSON that is not an
  object, and objects no rule matches all yield ``None`` (pass through).
* Client-originated events take their sender from the session identity only.
* Only frames from the upstream can attest identity (the welcome rule is never
  applied to client frames).
* Client frames whose type starts with the control prefix decode as
  ``EventKind.CONTROL`` so the pipeline can consume them.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..events import ChatEvent, EventKind, Frame, Identity, Notice, Side
from .base import UNSURE, Codec, CodecSession, MappingError, Unsure

_KINDS = {
    "message": EventKind.MESSAGE,
    "direct": EventKind.DIRECT,
    "join": EventKind.JOIN,
    "leave": EventKind.LEAVE,
    "nick": EventKind.NICK,
}
_RULE_FIELDS = {"kind", "match", "room", "sender", "to", "text", "id"}
_TOP_KEYS = {"type_field", "client", "upstream", "welcome", "control_prefix", "notices"}
_MISSING = object()


def _path(spec: str) -> tuple[str, ...]:
    return tuple(spec.split("."))


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return _MISSING
        obj = obj.get(part, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


def _scalar(value: Any) -> str | None:
    """A scalar field as text; None for missing, null, or structured values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or value is _MISSING:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: EventKind
    match: tuple[tuple[tuple[str, ...], Any], ...]
    room: tuple[str, ...] | None
    sender: tuple[str, ...] | None
    to: tuple[str, ...] | None
    text: tuple[str, ...] | None
    id: tuple[str, ...] | None

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(_get(obj, path) == want for path, want in self.match)


@dataclass(frozen=True, slots=True)
class _Welcome:
    match: tuple[tuple[tuple[str, ...], Any], ...]
    user_id: tuple[str, ...]
    name: tuple[str, ...] | None
    attrs: tuple[tuple[str, tuple[str, ...]], ...]


class JsonChatCodec(Codec):
    """A compiled jsonchat mapping."""

    name = "jsonchat"

    def __init__(self, mapping: Mapping[str, Any], source: str = "<mapping>") -> None:
        self.source = source
        unknown = set(mapping) - _TOP_KEYS
        if unknown:
            self._fail(sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
        type_field = mapping.get("type_field", "type")
        if not isinstance(type_field, str) or not type_field:
            self._fail("type_field", "must be a non-empty field path")
        self.type_path = _path(type_field)
        self.control_prefix = mapping.get("control_prefix", "chatguard.")
        if not isinstance(self.control_prefix, str) or not self.control_prefix:
            # An empty prefix would make every typed client frame a control
            # frame that never reaches the upstream.
            self._fail("control_prefix", "must be a non-empty string")
        self.rules: dict[Side, dict[Any, tuple[_Rule, ...]]] = {}
        for side in Side:
            self.rules[side] = self._compile_rules(side.value, mapping.get(side.value, []))
        self.welcome = self._compile_welcome(mapping.get("welcome"))
        self.notices = self._compile_notices(mapping.get("notices", {}))
        self._compile_sniffing()

    # -- loading ------------------------------------------------------------

    @classmethod
    def from_name_or_path(cls, spec: str) -> JsonChatCodec:
        """A built-in mapping by name (``example``) or a mapping file by path."""
        if "/" not in spec and not spec.endswith((".yaml", ".yml")):
            ref = resources.files("chatguard.codecs") / "mappings" / f"{spec}.yaml"
            if not ref.is_file():
                raise MappingError(f"{spec}: no built-in jsonchat mapping of that name")
            text, source = ref.read_text(encoding="utf-8"), f"built-in mapping {spec}"
        else:
            try:
                text, source = Path(spec).read_text(encoding="utf-8"), spec
            except OSError as exc:
                raise MappingError(f"{spec}: cannot read: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise MappingError(f"{spec}: not UTF-8 text: {exc.reason}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MappingError(f"{source}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise MappingError(f"{source}: the top level must be a mapping")
        return cls(data, source)

    def _fail(self, key: str, reason: str) -> None:
        raise MappingError(f"{self.source}: {key}: {reason}")

    def _match(self, where: str, spec: Any) -> tuple[tuple[tuple[str, ...], Any], ...]:
        if not isinstance(spec, dict) or not spec:
            self._fail(where, "match must be a non-empty mapping of field path to value")
        for key, value in spec.items():
            if not isinstance(value, str | int | float | bool) and value is not None:
                self._fail(f"{where}.{key}", "a match value must be a scalar (text, number, bool)")
        return tuple((_path(str(k)), v) for k, v in spec.items())

    def _field(self, where: str, spec: Any) -> tuple[str, ...] | None:
        if spec is None:
            return None
        if not isinstance(spec, str) or not spec:
            self._fail(where, "must be a field path such as `text` or `user.id`")
        return _path(spec)

    def _compile_rules(self, side: str, specs: Any) -> dict[Any, tuple[_Rule, ...]]:
        if not isinstance(specs, list):
            self._fail(side, "must be a list of rules")
        by_type: dict[Any, list[_Rule]] = {}
        for i, spec in enumerate(specs):
            where = f"{side}[{i}]"
            if not isinstance(spec, dict):
                self._fail(where, "a rule must be a mapping")
            unknown = set(spec) - _RULE_FIELDS
            if unknown:
                self._fail(f"{where}.{sorted(unknown)[0]}", "unknown rule field")
            kind_name = spec.get("kind", "")
            kind = _KINDS.get(kind_name) if isinstance(kind_name, str) else None
            if kind is None:
                self._fail(f"{where}.kind", f"must be one of {', '.join(_KINDS)}")
            assert kind is not None
            if side == "client" and "sender" in spec:
                self._fail(f"{where}.sender", "client frames take the sender from identity")
            rule = _Rule(
                kind=kind,
                match=self._match(f"{where}.match", spec.get("match")),
                room=self._field(f"{where}.room", spec.get("room")),
                sender=self._field(f"{where}.sender", spec.get("sender")),
                to=self._field(f"{where}.to", spec.get("to")),
                text=self._field(f"{where}.text", spec.get("text")),
                id=self._field(f"{where}.id", spec.get("id")),
            )
            if kind is EventKind.DIRECT and rule.to is None:
                self._fail(f"{where}.to", "a direct-message rule needs `to`")
            # Index rules by the value they require of the type field, so a
            # frame is checked only against rules that can match it.
            key = dict(rule.match).get(self.type_path, _MISSING)
            by_type.setdefault(key, []).append(rule)
        return {k: tuple(v) for k, v in by_type.items()}

    def _compile_sniffing(self) -> None:
        """What ``sniff`` may conclude from a frame's type value alone.

        Only for a top-level type field: ``kind_of_type`` maps each type value
        to its kind when every rule for that value gives the same kind (else
        UNSURE); ``untyped`` marks a side where a frame without a string
        type can still match (rules without a type match, or with a
        non-string type value), so that only a parse can rule it out.
        """
        self.sniff_key: re.Pattern[str] | None = None
        if len(self.type_path) == 1:
            key = re.escape(json.dumps(self.type_path[0]))
            self.sniff_key = re.compile(key + r'\s*:\s*"([^"\\]{0,128})"')
        self.kind_of_type: dict[Side, dict[Any, EventKind | Unsure]] = {}
        self.untyped: dict[Side, bool] = {}
        for side in Side:
            table: dict[Any, EventKind | Unsure] = {}
            untyped = False
            for value, rules in self.rules[side].items():
                if value is _MISSING or not isinstance(value, str):
                    untyped = True
                    continue
                kinds = {r.kind for r in rules}
                table[value] = kinds.pop() if len(kinds) == 1 else UNSURE
            self.kind_of_type[side] = table
            self.untyped[side] = untyped

    def _compile_welcome(self, spec: Any) -> _Welcome | None:
        if spec is None:
            return None
        if not isinstance(spec, dict):
            self._fail("welcome", "must be a mapping")
        user_id = self._field("welcome.user_id", spec.get("user_id"))
        if user_id is None:
            self._fail("welcome.user_id", "is required")
        assert user_id is not None
        attrs = spec.get("attrs", {})
        if not isinstance(attrs, dict):
            self._fail("welcome.attrs", "must map attribute names to field paths")
        return _Welcome(
            match=self._match("welcome.match", spec.get("match")),
            user_id=user_id,
            name=self._field("welcome.name", spec.get("name")),
            attrs=tuple(
                (str(k), p)
                for k, v in attrs.items()
                if (p := self._field(f"welcome.attrs.{k}", v)) is not None
            ),
        )

    def _compile_notices(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            self._fail("notices", "must map notice kinds to frame templates")
        probe = dict.fromkeys(_NOTICE_FIELDS, "x")
        for kind, template in spec.items():
            if not isinstance(template, dict):
                self._fail(f"notices.{kind}", "a template must be a JSON object")
            # Render once now, so a malformed format string fails at load and
            # not on every notice sent.
            try:
                _fill(template, probe)
            except (ValueError, IndexError, KeyError, AttributeError) as exc:
                self._fail(f"notices.{kind}", f"bad template text: {exc}")
        return dict(spec)

    # -- sessions -----------------------------------------------------------

    def open(self, identity: Identity | None, *, use_welcome: bool = True) -> JsonChatSession:
        return JsonChatSession(self, identity, use_welcome)


class JsonChatSession(CodecSession):
    __slots__ = ("codec", "identity", "use_welcome")

    def __init__(self, codec: JsonChatCodec, identity: Identity | None, use_welcome: bool) -> None:
        self.codec = codec
        self.identity = identity
        # A gateway- or JWT-attested identity is the operator's explicit
        # choice; the welcome frame only fills in when there is none.
        self.use_welcome = use_welcome and identity is None

    def decode(self, frame: Frame, origin: Side) -> ChatEvent | None:
        if not isinstance(frame, str):
            return None
        # Cheap pre-check: most non-JSON text never reaches the parser.
        stripped = frame.lstrip()
        if not stripped.startswith("{"):
            return None
        try:
            obj = json.loads(frame)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        codec = self.codec
        type_value = _get(obj, codec.type_path)
        if origin is Side.CLIENT:
            if isinstance(type_value, str) and type_value.startswith(codec.control_prefix):
                return ChatEvent(
                    EventKind.CONTROL,
                    origin,
                    frame,
                    sender=self.identity.user_id if self.identity else None,
                    control=obj,
                )
        elif self.use_welcome and codec.welcome is not None and self._attest(obj, codec.welcome):
            # One attestation per connection: later frames are never read
            # as a new identity.
            self.use_welcome = False
            return None
        rules = codec.rules[origin]
        try:
            candidates = rules.get(type_value, ()) if type_value is not _MISSING else ()
        except TypeError:  # unhashable type value (a list or object)
            return None
        for rule in candidates + rules.get(_MISSING, ()):
            if rule.matches(obj):
                return self._build(rule, obj, frame, origin)
        return None

    def sniff(self, frame: Frame, origin: Side) -> EventKind | Unsure | None:
        """The kind of a frame from its one type field, without parsing it.

        Sure only when the frame holds the type key exactly once and no
        ``\\u`` escape (which could spell a second, hidden type key); then
        that occurrence is the top-level type if there is one. Anything else
        — no JSON object, a welcome still awaited, rules that need more than
        the type to decide — is ``UNSURE`` and gets a full decode.
        """
        codec = self.codec
        if not isinstance(frame, str) or codec.sniff_key is None:
            return UNSURE
        if origin is Side.UPSTREAM and self.use_welcome and codec.welcome is not None:
            return UNSURE
        if "\\u" in frame:
            return UNSURE
        found = codec.sniff_key.findall(frame)
        if len(found) != 1:
            return UNSURE if found or codec.untyped[origin] else None
        value = found[0]
        if origin is Side.CLIENT and value.startswith(codec.control_prefix):
            return EventKind.CONTROL
        return codec.kind_of_type[origin].get(value, UNSURE if codec.untyped[origin] else None)

    def _attest(self, obj: dict[str, Any], welcome: _Welcome) -> bool:
        if not all(_get(obj, path) == want for path, want in welcome.match):
            return False
        user_id = _scalar(_get(obj, welcome.user_id))
        if user_id is None:
            return False
        name = _scalar(_get(obj, welcome.name)) if welcome.name else None
        attrs = {k: v for k, p in welcome.attrs if (v := _scalar(_get(obj, p))) is not None}
        self.identity = Identity(user_id, name or user_id, attrs, source="welcome")
        return True

    def _build(
        self, rule: _Rule, obj: dict[str, Any], frame: str, origin: Side
    ) -> ChatEvent | None:
        text: str | None = None
        if rule.text is not None:
            value = _get(obj, rule.text)
            if not isinstance(value, str):
                return None  # a message without text is not one we understand
            text = value
        if origin is Side.CLIENT:
            sender = self.identity.user_id if self.identity else None
        else:
            sender = _scalar(_get(obj, rule.sender)) if rule.sender else None
        recipients: tuple[str, ...] = ()
        if rule.to is not None:
            to = _get(obj, rule.to)
            if isinstance(to, list):
                recipients = tuple(s for v in to if (s := _scalar(v)) is not None)
            elif (s := _scalar(to)) is not None:
                recipients = (s,)
            if not recipients:
                return None
        return ChatEvent(
            rule.kind,
            origin,
            frame,
            sender=sender,
            room=_scalar(_get(obj, rule.room)) if rule.room else None,
            recipients=recipients,
            text=text,
            message_id=_scalar(_get(obj, rule.id)) if rule.id else None,
        )

    def rewrite_text(self, event: ChatEvent, text: str) -> Frame | None:
        if not isinstance(event.raw, str):
            return None
        try:
            obj = json.loads(event.raw)
        except ValueError:
            return None
        rules = self.codec.rules[event.origin]
        type_value = _get(obj, self.codec.type_path)
        try:
            candidates = rules.get(type_value, ()) if type_value is not _MISSING else ()
        except TypeError:
            return None
        for rule in candidates + rules.get(_MISSING, ()):
            if rule.text is not None and rule.matches(obj):
                node = obj
                for part in rule.text[:-1]:
                    node = node[part]
                node[rule.text[-1]] = text
                return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return None

    def render(self, notice: Notice) -> Frame:
        values: dict[str, Any] = {
            "kind": notice.kind,
            "text": notice.text,
            "banner": notice.banner_id,
            "severity": notice.severity.value,
            "room": notice.room,
            "with": notice.with_user,
        }
        values.update(notice.extra)
        template = self.codec.notices.get(notice.kind)
        if template is None:
            # No template for this kind: a generic control-prefixed frame under
            # the mapping's own type field, so a client that does not know it
            # can still ignore it by type.
            body: dict[str, Any] = {}
            node = body
            *parents, last = self.codec.type_path
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = f"{self.codec.control_prefix}{notice.kind}"
            for key, value in values.items():
                if key != "kind":
                    body.setdefault(key, value)
            return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return json.dumps(_fill(template, values), ensure_ascii=False, separators=(",", ":"))


_FORMATTER = string.Formatter()
_EXACT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Fields every notice offers to templates (plus its ``extra`` fields).
_NOTICE_FIELDS = ("kind", "text", "banner", "severity", "room", "with", "hold", "choices")


def _fill(template: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str):
        exact = _EXACT.fullmatch(template)
        if exact is not None:
            # A whole-value placeholder keeps the value's JSON type; a field
            # the notice does not carry is null.
            return values.get(exact.group(1))
        if "{" in template or "}" in template:
            return _FORMATTER.vformat(template, (), _Defaulting(values))
    return template


class _Defaulting(dict[str, Any]):
    """Format values where a missing field renders as empty text."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__({k: "" if v is None else v for k, v in values.items()})

    def __missing__(self, key: str) -> str:
        return ""
