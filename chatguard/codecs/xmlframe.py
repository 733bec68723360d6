"""A safe, bounded XML parser for one WebSocket frame holding one element.

What it owns: turning one frame (an RFC 7395 stanza, ``<open/>`` or
``<close/>``) into a small tree of ``Element`` nodes, or refusing it with a
reason that the relay can count.

Invariants:

* Restricted XML only (RFC 6120 §11.1): a document type declaration, an
  entity declaration, an external entity reference, a comment or a processing
  instruction refuses the frame, so no entity is ever expanded (billion
  laughs, external entities) and nothing is fetched.
* Bounded: a frame over ``max_bytes`` (UTF-8) is refused before any parse; an
  element nested deeper than ``max_depth`` stops the parse at that element.
  The tree can therefore never be larger than the frame.
* Exactly one root element: an unclosed element, a second root or trailing
  text refuses the frame (``malformed``).
* Pure: no I/O, and nothing here ever raises anything but ``Refused``.

Byte offsets (into the frame's UTF-8 encoding) are kept per element so that a
caller can splice new content into the original bytes without re-serialising
the rest (redaction must leave every other byte as it was).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

#: Namespace and local name are joined with this in expat's names.
_SEP = " "


class Refused(Exception):
    """The frame is not acceptable; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


#: The reasons ``Refused`` carries (metric label values).
REASONS = ("too_large", "too_deep", "dtd", "restricted", "malformed")


@dataclass(slots=True, eq=False)
class Element:
    """One parsed element: namespace, local name, attributes, children, text.

    ``start`` is the byte offset of its start tag; ``inner`` of the first
    thing after the start tag (``-1`` before it is known); ``end`` of its end
    tag (for an empty-element tag, of the byte after it).
    """

    ns: str
    name: str
    attrs: dict[str, str]
    start: int
    inner: int = -1
    end: int = -1
    text: str = ""
    children: list[Element] = field(default_factory=list)
    # Character data arrives in many small pieces; joined once at the end
    # tag, so a frame of many entity references stays linear to parse.
    parts: list[str] = field(default_factory=list)

    def child(self, name: str, ns: str | None = None) -> Element | None:
        """The first child called ``name`` (in namespace ``ns``, when given)."""
        for child in self.children:
            if child.name == name and (ns is None or child.ns == ns):
                return child
        return None

    def children_named(self, name: str, ns: str | None = None) -> list[Element]:
        return [c for c in self.children if c.name == name and (ns is None or c.ns == ns)]

    def content_span(self, frame: bytes) -> tuple[int, int] | None:
        """The byte range between the start and end tags; None for ``<a/>``.

        For an empty-element tag expat reports the end event right after the
        tag with nothing in between, so the tag itself ends in ``/>``.
        """
        if self.inner == self.end and frame[self.end - 2 : self.end] == b"/>":
            return None
        return self.inner, self.end


def parse(frame: bytes, *, max_bytes: int, max_depth: int) -> Element:
    """The root element of ``frame``; raises ``Refused`` for anything else."""
    if len(frame) > max_bytes:
        raise Refused("too_large", f"{len(frame)} bytes (limit {max_bytes})")
    builder = _Builder(max_depth)
    parser = expat.ParserCreate("UTF-8", _SEP)
    builder.attach(parser)
    try:
        parser.Parse(frame, True)
    except Refused:
        raise
    except expat.ExpatError as exc:
        raise Refused("malformed", str(exc)) from None
    except (ValueError, RecursionError) as exc:  # pragma: no cover - defensive
        raise Refused("malformed", str(exc)) from None
    if builder.root is None:  # pragma: no cover - expat refuses an empty document
        raise Refused("malformed", "no element")
    return builder.root


class _Builder:
    __slots__ = ("awaiting", "max_depth", "parser", "root", "stack")

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.root: Element | None = None
        self.stack: list[Element] = []
        self.parser: expat.XMLParserType | None = None
        # The element whose first inner event we are waiting for.
        self.awaiting: Element | None = None

    def attach(self, p: expat.XMLParserType) -> None:
        self.parser = p
        # No parameter entities, no external DTD subset, ever.
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartElementHandler = self.start
        p.EndElementHandler = self.end
        p.CharacterDataHandler = self.chars
        p.StartDoctypeDeclHandler = self.doctype
        p.EntityDeclHandler = self.entity
        p.UnparsedEntityDeclHandler = self.entity
        p.NotationDeclHandler = self.entity
        p.ExternalEntityRefHandler = self.external
        p.CommentHandler = self.comment
        p.ProcessingInstructionHandler = self.instruction
        p.StartCdataSectionHandler = self.mark

    def _index(self) -> int:
        assert self.parser is not None
        return int(self.parser.CurrentByteIndex)

    def mark(self) -> None:
        if self.awaiting is not None:
            self.awaiting.inner = self._index()
            self.awaiting = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        # Called for every element of every frame: kept inline and flat.
        stack = self.stack
        if len(stack) >= self.max_depth:
            raise Refused("too_deep", f"more than {self.max_depth} levels")
        assert self.parser is not None
        index = int(self.parser.CurrentByteIndex)
        if self.awaiting is not None:
            self.awaiting.inner = index
        ns, sep, local = name.rpartition(_SEP)
        element = Element(ns, local, attrs, index) if sep else Element("", name, attrs, index)
        if stack:
            stack[-1].children.append(element)
        else:
            self.root = element
        stack.append(element)
        self.awaiting = element

    def end(self, name: str) -> None:
        element = self.stack.pop()
        index = self._index()
        if self.awaiting is element:
            # Nothing came between the start tag and this end: either an
            # empty-element tag (end reported after it) or ``<a></a>``.
            element.inner = index
            self.awaiting = None
        element.end = index
        element.text = "".join(element.parts)
        element.parts.clear()

    def chars(self, data: str) -> None:
        self.mark()
        if self.stack:
            self.stack[-1].parts.append(data)

    def doctype(self, *args: object) -> None:
        raise Refused("dtd", "document type declarations are not allowed")

    def entity(self, *args: object) -> None:
        raise Refused("dtd", "entity declarations are not allowed")

    def external(self, *args: object) -> int:
        raise Refused("dtd", "external entities are not allowed")

    def comment(self, data: str) -> None:
        raise Refused("restricted", "comments are not allowed")

    def instruction(self, target: str, data: str) -> None:
        raise Refused("restricted", "processing instructions are not allowed")


def escape_text(text: str) -> str:
    """``text`` as XML character data."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    """``text`` as a double-quoted XML attribute value."""
    return escape_text(text).replace('"', "&quot;")
