"""The audit interface: who did what to which case or record, and why.

What it owns: the ``AuditSink`` protocol that every part which changes a
case, applies a sanction, or reads, exports or purges evidence writes to, and
``MemoryAudit``, a bounded in-memory sink for tests and for instances without
an evidence log. The evidence log implements ``AuditSink`` so that the chain
of custody is part of the same tamper-evident log as the evidence.

Invariants: an audit entry never carries message content, only ids and the
actor's stated reason; ``audit`` returns the id of the entry it wrote.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_KEEP = 10_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    subject: str
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    async def audit(self, entry: AuditEntry) -> str:
        """Record ``entry``; the id of the record written."""
        ...


class MemoryAudit:
    """Keeps the last ``keep`` entries in memory, ids ``audit-1``, ``audit-2``..."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.entries: deque[tuple[str, AuditEntry]] = deque(maxlen=keep)
        self._ids = itertools.count(1)

    async def audit(self, entry: AuditEntry) -> str:
        entry_id = f"audit-{next(self._ids)}"
        self.entries.append((entry_id, entry))
        return entry_id
