"""Remembered regex verdicts, so that a second start of a pack is fast.

What it owns: the file ``<cache_dir>/regex-safe.json`` listing the rule
regexes that were accepted (``rules.regex_pattern``: the supported syntax,
the shape checks and CPU-time probes of ``safety.check_regex``, and no
characters a normalised message never holds), and the key each is
remembered by. The probes are most of the time it takes to load a pack
(seconds for the default pack, far more on a loaded machine), and the parse
most of the rest; a remembered regex skips both. The matcher parses a regex
only if it has to build its Hyperscan database anew.

Invariants:

1. Only *accepted* regexes are remembered. A refused one is checked again at
   every load, so it is refused exactly as on a first load, with its file
   and line; the cache can make a load faster, never different.
2. A key is a digest of the regex text, the regex flags, the probe settings,
   ``SAFETY_VERSION``, the code that judges a regex (``safety.py``,
   ``regex_tree.py``, ``rules.py``, ``normalise.py``, ``confusables.py``) and
   the `regex` module's version: any change to how regexes are judged or run
   judges them anew.
3. Bounded: at most ``MAX_ENTRIES`` keys; when a save would exceed it, only
   the keys of the pack just loaded are kept.
4. The cache only saves time: a missing, unreadable, corrupt or read-only
   file is the same as an empty cache, never an error. A save is atomic
   (write a temporary file, then rename), so a concurrent reader sees the
   old file or the new one.

The cache directory is trusted like the rest of ``data_dir`` (which also
holds the evidence keys and the compiled Hyperscan database), or, for the
``chatguard policy`` commands, like the user's own home: whoever can write
it could have a slow regex accepted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import regex  # type: ignore[import-untyped, unused-ignore]

from chatguard.policy import confusables, normalise, regex_tree, safety

_RULES = str(Path(__file__).with_name("rules.py"))  # imports this module: named, not imported

FILE_NAME = "regex-safe.json"
#: Bump when the meaning of a verdict changes in a way the code digest below
#: would not show (for instance a change of what counts as too slow elsewhere).
SAFETY_VERSION = 2  # 2: the time limit follows the machine (safety.slow_limit)
MAX_ENTRIES = 100_000
_FORMAT = 1


@functools.cache
def _salt() -> bytes:
    """Everything a verdict depends on besides the pattern itself."""
    digest = hashlib.sha256()
    for module in (
        safety.__file__,
        regex_tree.__file__,
        _RULES,
        normalise.__file__,
        confusables.__file__,
    ):
        digest.update(Path(module).read_bytes())
    settings = [
        SAFETY_VERSION,
        int(safety.FLAGS),
        safety.PROBE_CHARS,
        safety.SLOW_SECONDS,
        safety.SLOW_REFERENCES,
        safety.MAX_SLOW_SECONDS,
        safety.REFERENCE_PATTERN,
        safety.RUNAWAY_SECONDS,
        safety.BIG_REPEAT,
        regex.__version__,
    ]
    digest.update(json.dumps(settings).encode())
    return digest.digest()


def verdict_key(source: str) -> str:
    return hashlib.sha256(_salt() + source.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SafetyCache:
    """The accepted regexes known in one cache directory, plus those found by
    the load in progress (``save`` writes both)."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / FILE_NAME
        self._known = self._read()
        self._used: set[str] = set()
        self._added = False
        self.hits = 0
        self.misses = 0

    def _read(self) -> set[str]:
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("format") != _FORMAT:
                return set()
            keys = data["safe"]
            if not isinstance(keys, list) or len(keys) > MAX_ENTRIES:
                return set()
            return {k for k in keys if isinstance(k, str) and len(k) == 32}
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return set()

    def known_safe(self, source: str) -> bool:
        key = verdict_key(source)
        self._used.add(key)
        if key in self._known:
            self.hits += 1
            return True
        self.misses += 1
        return False

    def add(self, source: str) -> None:
        key = verdict_key(source)
        self._used.add(key)
        if key not in self._known:
            self._known.add(key)
            self._added = True

    def save(self) -> None:
        """Write the verdicts if this load found new ones."""
        if not self._added:
            return
        keys = self._known if len(self._known) <= MAX_ENTRIES else self._used & self._known
        body = json.dumps({"format": _FORMAT, "safe": sorted(keys)}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".regex-safe-")
        except OSError:
            return  # a read-only directory: the cache only saves time
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
            os.replace(tmp, self.path)
            self._added = False
        except OSError:
            Path(tmp).unlink(missing_ok=True)
