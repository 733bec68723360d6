"""Reading a policy file's YAML with line numbers, and the issues it finds.

This module owns ``Reader``: typed access to one file's YAML nodes in which
every problem (a syntax error, an unknown or duplicate key, text where a
number belongs) becomes a ``PolicyIssue`` naming the file and line, and
reading goes on, so one pass reports every problem in a file. ``rules.py``
says what a rule file and ``policy.yaml`` contain; this module only knows
YAML.

Invariants: a ``Reader`` never raises for bad input, it records an issue;
scalars are read as written ("on" stays text where text is expected); only
PyYAML's safe loader is used (libyaml's when PyYAML was built with it).
Never: read files (callers pass the text) or build rules.
"""

from __future__ import annotations

import difflib
import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from yaml.constructor import SafeConstructor

_E = TypeVar("_E", bound=enum.Enum)
# libyaml's parser when PyYAML was built with it: the same nodes and marks, faster.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    file: str
    line: int  # 1-based; 0 for the whole file
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


class PolicyError(ValueError):
    """A refused pack: every problem found, one per line."""

    def __init__(self, errors: Sequence[PolicyIssue]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(map(str, self.errors)))


def suggest(value: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(value, allowed, n=1)
    return f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)


def kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "empty" if node.tag.endswith(":null") else "text"


class Reader:
    """Typed access to one file's YAML nodes; every problem becomes an issue."""

    def __init__(self, file: str, issues: list[PolicyIssue]) -> None:
        self.file = file
        self.issues = issues
        self.constructor = SafeConstructor()

    def error(self, node: yaml.Node | int, reason: str) -> None:
        line = node if isinstance(node, int) else node.start_mark.line + 1
        self.issues.append(PolicyIssue(self.file, line, reason))

    def compose(self, text: str) -> yaml.Node | None:
        loader = _Loader(text)
        try:
            return loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            self.error(mark.line + 1 if mark else 0, f"YAML syntax error: {e.problem or e}")
        except yaml.YAMLError as e:
            self.error(0, f"YAML syntax error: {e}")
        finally:
            loader.dispose()
        return None

    def value(self, node: yaml.Node) -> Any:
        return self.constructor.construct_object(node, deep=True)

    def mapping(
        self,
        node: yaml.Node,
        what: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> dict[str, yaml.Node] | None:
        """The mapping's values by key, after checking for unknown, duplicate
        and missing keys (each reported, the rest still returned)."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping, not {kind(node)}")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                shown = key if key is not None else kind(key_node)
                self.error(key_node, f"unknown key {shown!r} in {what} ({suggest(shown, allowed)})")
            elif key in out:
                first = out[key].start_mark.line + 1
                self.error(key_node, f"duplicate key {key!r} in {what} (first at line {first})")
            else:
                out[key] = value_node
        for key in required:
            if key not in out:
                self.error(node, f"{what} is missing {key!r}")
        return out

    def items(self, node: yaml.Node, what: str, *, empty_ok: bool = False) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what!r} must be a list, not {kind(node)}")
            return []
        if not node.value and not empty_ok:
            self.error(node, f"{what!r} is empty")
        return list(node.value)

    def text(self, node: yaml.Node, what: str) -> str | None:
        """A scalar as written ("on" stays "on"; YAML would read True)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            self.error(node, f"{what!r} must be text, not {kind(node)}")
            return None
        if not str(node.value).strip():
            self.error(node, f"{what!r} is empty")
            return None
        return str(node.value)

    def texts(self, node: yaml.Node, what: str, *, empty_ok: bool = False) -> list[str]:
        """A list of texts; a single text is read as a list of one."""
        if isinstance(node, yaml.ScalarNode):
            one = self.text(node, what)
            return [one] if one is not None else []
        out = [self.text(n, what) for n in self.items(node, what, empty_ok=empty_ok)]
        return [t for t in out if t is not None]

    def number(self, node: yaml.Node, what: str, *, minimum: float = 0.0) -> float | None:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            self.error(node, f"{what!r} must be a number")
            return None
        if v < minimum:
            self.error(node, f"{what!r} must be at least {minimum:g}")
            return None
        return float(v)

    def integer(self, node: yaml.Node, what: str, low: int, high: int) -> int | None:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            self.error(node, f"{what!r} must be a whole number from {low} to {high}")
            return None
        return v

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(v, bool):
            self.error(node, f"{what!r} must be true or false")
            return None
        return v

    def choice(self, node: yaml.Node, what: str, allowed: Sequence[str]) -> str | None:
        v = self.text(node, what)
        if v is not None and v not in allowed:
            self.error(node, f"unknown {what} {v!r} ({suggest(v, allowed)})")
            return None
        return v

    def member(self, node: yaml.Node, what: str, cls: type[_E]) -> _E | None:
        v = self.choice(node, what, [str(e.value) for e in cls])
        return None if v is None else cls(v)
