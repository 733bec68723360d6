"""IRC lines: parsing and serialising one message (RFC 1459/2812 with IRCv3 tags).

What it owns: the grammar of one line (without its CR LF) —
``['@' tags SPACE] [':' prefix SPACE] command *(SPACE param) [SPACE ':' trailing]``
— the IRCv3 escaping of tag values, RFC 1459 case mapping of nicks and
channel names, and the bytes-to-text rule for message text.

Invariants:

* ``parse`` never raises: a line it cannot read yields ``None``.
* Parsing keeps the byte offset where the last parameter starts, so a codec
  can replace a message's text and leave every other byte of the line as it
  was received.
* ``clean_text`` is the one place that makes text safe to put on a line:
  CR, LF and NUL never survive it, so rewritten or injected text cannot
  smuggle an extra line.
* Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RFC 1459 limit for one line, CR LF included (tags not counted).
MAX_LINE_BYTES = 512
#: IRCv3 limit for the tags part, leading '@' and trailing space included.
MAX_TAG_BYTES = 8191

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPE = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
# RFC 1459 case mapping: {}|^ are the lower-case forms of []\~.
_CASEMAP = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
_UNSAFE = str.maketrans({"\r": " ", "\n": " ", "\0": ""})
CHANNEL_PREFIXES = "#&+!"


@dataclass(frozen=True, slots=True)
class Line:
    """One parsed line. ``params`` are decoded text; ``text_offset`` is the
    byte offset in the raw line where the last parameter starts (at its ':'
    when it has one), or -1 when there are no parameters."""

    tags: dict[str, str]
    prefix: str | None
    command: str
    params: tuple[str, ...]
    text_offset: int
    trailing: bool  # the last parameter was written with a leading ':'

    @property
    def source_nick(self) -> str | None:
        if self.prefix is None:
            return None
        return self.prefix.split("!", 1)[0].split("@", 1)[0]


def decode_text(data: bytes) -> str:
    """Text of a line's bytes: UTF-8 when valid, else Latin-1 (which never fails).

    Many IRC networks still carry Latin-1 or other 8-bit text; decoding never
    fails, and the raw bytes are what is forwarded unless the text is rewritten.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def unescape_tag(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 < len(value):
                nxt = value[i + 1]
                out.append(_UNESCAPE.get(nxt, nxt))
            # A lone trailing backslash is dropped (IRCv3 message-tags).
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def escape_tag(value: str) -> str:
    return "".join(_ESCAPE.get(ch, ch) for ch in value.replace("\0", ""))


def parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        tags[key] = unescape_tag(value)
    return tags


def format_tags(tags: dict[str, str]) -> str:
    parts = [k if v == "" else f"{k}={escape_tag(v)}" for k, v in tags.items()]
    return "@" + ";".join(parts) if parts else ""


def parse(raw: bytes) -> Line | None:
    """The parsed form of one line (CR LF already removed), or None if unreadable."""
    pos = 0
    end = len(raw)
    tags: dict[str, str] = {}
    if raw.startswith(b"@"):
        space = raw.find(b" ", 1)
        if space < 0:
            return None
        tags = parse_tags(decode_text(raw[1:space]))
        pos = space
    while pos < end and raw[pos] == 0x20:
        pos += 1
    prefix: str | None = None
    if pos < end and raw[pos] == 0x3A:  # ':'
        space = raw.find(b" ", pos)
        if space < 0:
            return None
        prefix = decode_text(raw[pos + 1 : space])
        pos = space
        while pos < end and raw[pos] == 0x20:
            pos += 1
    space = raw.find(b" ", pos)
    cmd_end = end if space < 0 else space
    command = raw[pos:cmd_end].decode("latin-1")
    if not command or not (command.isalpha() or command.isdigit()) or not command.isascii():
        return None
    pos = cmd_end
    params: list[str] = []
    text_offset = -1
    trailing = False
    while pos < end:
        while pos < end and raw[pos] == 0x20:
            pos += 1
        if pos >= end:
            break
        text_offset = pos
        if raw[pos] == 0x3A:
            params.append(decode_text(raw[pos + 1 :]))
            trailing = True
            break
        space = raw.find(b" ", pos)
        stop = end if space < 0 else space
        params.append(decode_text(raw[pos:stop]))
        pos = stop
    return Line(tags, prefix, command.upper(), tuple(params), text_offset, trailing)


def serialise(
    command: str,
    params: tuple[str, ...] | list[str],
    *,
    prefix: str | None = None,
    tags: dict[str, str] | None = None,
) -> bytes:
    """One line (without CR LF); the last parameter is always written trailing."""
    parts: list[str] = []
    if tags:
        parts.append(format_tags(tags))
    if prefix:
        parts.append(":" + clean_word(prefix))
    parts.append(command)
    if params:
        parts.extend(clean_word(p) for p in params[:-1])
        parts.append(":" + clean_text(params[-1]))
    return " ".join(parts).encode("utf-8")


def clean_text(text: str) -> str:
    """Text that cannot break out of its line: CR and LF become spaces, NUL goes."""
    return text.translate(_UNSAFE)


def clean_word(text: str) -> str:
    """A middle parameter: no spaces and nothing that would end the line."""
    cleaned = clean_text(text).replace(" ", "")
    return cleaned.lstrip(":") or "*"


def casefold(name: str) -> str:
    """RFC 1459 case folding, for comparing nicks and channel names."""
    return name.translate(_CASEMAP)


def is_channel(target: str) -> bool:
    return bool(target) and target[0] in CHANNEL_PREFIXES


def tags_length(raw: bytes) -> int:
    """Bytes of the tags part (with '@' and the space after it); 0 without tags."""
    if not raw.startswith(b"@"):
        return 0
    space = raw.find(b" ")
    return len(raw) if space < 0 else space + 1


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")
