"""The case queue in the shared store: records, group keys, leases and indexes.

What it owns: how cases live in the ``Store`` and how they are read back in
queue order. It makes no workflow decisions (``model.py``) and writes no
audit entries (``book.py``).

Store layout (keys and indexes of the ``Store`` interface)::

    case:<id>            the case as JSON (final cases expire, see below)
    case-lease:<id>      the claimant's name, expiring after the lease
    case-group:<key>     the id of the open case for a conversation + subject
    case-seq             the counter that numbers cases
    index cases:open     open case ids, scored by creation time
    index cases:done     reported and closed case ids, scored by last change

Invariants:

* Several replicas may share one store: every read-modify-write of a case is
  a ``compare_and_set`` retried on conflict (``update``); a new case becomes
  visible by one ``set_if_absent`` of its group key, and its record is
  written before that key, so a group key always names a written case; a
  lease is taken with ``set_if_absent``, so two moderators never hold one.
* Open cases never expire. A case that becomes final leaves the open index,
  joins the done index (trimmed to ``max_done``, oldest first), frees its
  group key, and expires ``closed_ttl`` / ``reported_ttl`` after it ended.
* Order: open cases first, by severity (highest first) then age (oldest
  first); final cases after, latest change first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..stores import Store
from . import model
from .model import Case, CaseError, Status

OPEN, DONE = "cases:open", "cases:done"
#: Attempts of one read-modify-write before giving up on a busy case.
MAX_RETRIES = 20


@dataclass(frozen=True, slots=True)
class BookLimits:
    """Bounds and retention of the case book (config section ``cases``)."""

    max_open: int = 10_000
    max_done: int = 100_000
    closed_ttl: float = 90 * 86400.0
    reported_ttl: float = 365 * 86400.0
    max_duration: float = 365 * 86400.0
    max_list: int = 1000
    reporting_service: str = "ChatGuard"


def encode(case: Case) -> bytes:
    return json.dumps(case.to_json(), separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes) -> Case:
    return Case.from_json(json.loads(raw))


def queue_order(case: Case) -> tuple[int, float, float, str]:
    """Open cases first, by severity (highest first) then age (oldest first);
    final cases after, latest change first."""
    if case.status.open:
        return (0, -model.severity_rank(case.severity), case.created_at, case.id)
    return (1, 0, -case.updated_at, case.id)


@dataclass(frozen=True, slots=True)
class Filters:
    """What ``select`` keeps: every filter given must hold."""

    status: Status | None = None
    severity: str | None = None
    category: str | None = None
    assignee: str | None = None
    older_than: float | None = None
    escalated_to_lead: bool | None = None

    def keep(self, case: Case, now: float) -> bool:
        return (
            (self.status is None or case.status is self.status)
            and (self.severity is None or case.severity == self.severity)
            and (self.category is None or self.category in case.categories)
            and (self.assignee is None or case.assignee == self.assignee)
            and (self.older_than is None or now - case.created_at >= self.older_than)
            and (self.escalated_to_lead is None or case.escalated_to_lead == self.escalated_to_lead)
        )


def select(cases: Iterable[Case], filters: Filters, now: float, limit: int) -> list[Case]:
    """The cases that pass ``filters``, in queue order, at most ``limit``."""
    kept = sorted((c for c in cases if filters.keep(c, now)), key=queue_order)
    return kept[: max(0, limit)]


class CaseQueue:
    """Cases, their group keys, leases and indexes in one ``Store``."""

    def __init__(
        self,
        store: Store,
        limits: BookLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock

    # -- records --------------------------------------------------------------

    async def get(self, case_id: str) -> Case | None:
        raw = await self.store.get(f"case:{case_id}")
        return None if raw is None else decode(raw)

    async def load(self, wanted: Status | None, *, done: bool = True) -> list[Case]:
        """Every open case (and final ones when ``done``), as stored."""
        ids: list[str] = []
        if wanted is None or wanted.open:
            ids += [m for m, _ in await self.store.index_members(OPEN)]
        if done and (wanted is None or not wanted.open):
            ids += [m for m, _ in await self.store.index_members(DONE)]
        raws = await self.store.get_many([f"case:{i}" for i in ids])
        cases = []
        for case_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                # An expired final case: it leaves the index too.
                await self.store.index_remove(DONE, case_id)
                continue
            cases.append(decode(raw))
        return cases

    async def update(self, case_id: str, change: Callable[[Case], Case]) -> tuple[Case, Case]:
        """Apply ``change`` atomically (compare-and-set, retried on conflict).

        ``change`` may raise ``CaseError``; returning its argument unchanged
        writes nothing.
        """
        key = f"case:{case_id}"
        for _ in range(MAX_RETRIES):
            raw = await self.store.get(key)
            if raw is None:
                raise CaseError(f"no case {case_id}")
            before = decode(raw)
            after = change(before)
            if after is before:
                return before, after
            if await self.store.compare_and_set(key, raw, encode(after), self._ttl(after)):
                if before.status.open and not after.status.open:
                    await self._finish(after)
                return before, after
        raise CaseError(f"case {case_id} is busy; try again")

    # -- creation and grouping -------------------------------------------------

    async def group_case(self, group: str) -> str | None:
        """The id of the open case of ``group``, if there is one."""
        raw = await self.store.get(f"case-group:{group}")
        return None if raw is None else raw.decode()

    async def forget_group(self, group: str, case_id: str) -> None:
        """Drop a group key that still names ``case_id`` (a stale one)."""
        await self.store.compare_and_set(f"case-group:{group}", case_id.encode(), None)

    async def open_count(self) -> int:
        return await self.store.index_size(OPEN)

    async def done_count(self) -> int:
        return await self.store.index_size(DONE)

    async def next_id(self) -> str:
        return f"case-{await self.store.incr('case-seq')}"

    async def create(self, case: Case) -> bool:
        """Publish a new case as its group's open case; False when another won."""
        await self.store.set(f"case:{case.id}", encode(case))
        if not await self.store.set_if_absent(f"case-group:{case.group}", case.id.encode()):
            await self.store.delete(f"case:{case.id}")
            return False
        await self.store.index_add(OPEN, case.id, case.created_at)
        return True

    # -- leases ---------------------------------------------------------------

    async def take_lease(self, case_id: str, moderator: str, lease: float) -> bool:
        """Take or renew the lease; True when newly taken. ``CaseError`` if another holds it."""
        key = f"case-lease:{case_id}"
        if await self.store.set_if_absent(key, moderator.encode(), ttl=lease):
            return True
        holder = await self.store.get(key)
        if holder is not None and holder.decode() != moderator:
            raise CaseError(f"case {case_id} is claimed by another moderator")
        await self.store.set(key, moderator.encode(), ttl=lease)
        return False

    async def drop_lease(self, case_id: str, moderator: str) -> None:
        """End ``moderator``'s lease (and only theirs)."""
        await self.store.compare_and_set(f"case-lease:{case_id}", moderator.encode(), None)

    # -- internals --------------------------------------------------------------

    def _ttl(self, case: Case) -> float | None:
        """Final cases expire a fixed time after they ended (a later note does
        not extend that); open cases never expire."""
        if case.status is Status.REPORTED:
            keep = self.limits.reported_ttl
        elif case.status is Status.CLOSED:
            keep = self.limits.closed_ttl
        else:
            return None
        if not keep:
            return None
        finished = case.finished_at if case.finished_at is not None else case.updated_at
        return max(1.0, finished + keep - self.clock())

    async def _finish(self, case: Case) -> None:
        """A case became final: out of the queue, its group free for a new case."""
        await self.store.index_remove(OPEN, case.id)
        await self.store.index_add(DONE, case.id, case.updated_at)
        await self.forget_group(case.group, case.id)
        excess = await self.store.index_size(DONE) - self.limits.max_done
        if excess > 0:
            for member, _ in (await self.store.index_members(DONE))[:excess]:
                await self.store.index_remove(DONE, member)
