"""Banner history: which banners each user saw, and what followed — in the Store.

What it owns: one record per user in the shared store (key
``banners:user:<user>``) listing that user's impressions, oldest first, each
with its outcome once decided; the impressions still waiting for an outcome
(with what the viewer did since, so any replica can decide it); the map from
a held message to its prompt's impression (``banners:hold:<hold>``); the
index of users with open impressions (``banners:open``, scored by their
earliest deadline) that every replica sweeps; and short-lived presence marks
(``banners:here:<user>``, naming the replica that last saw the user
connected) that say a user is connected to some replica.

Invariants:

* Every change to a user's record is a ``compare_and_set`` of the whole
  record, retried a bounded number of times, so two replicas never lose each
  other's updates and an outcome is decided exactly once: only the writer
  whose swap succeeded reports it (``Change.decided``).
* Bounded: at most ``max_per_user`` impressions per user (room notices go
  first, then the oldest decided; an open one pushed out is closed as if its
  window had ended), at most ``MAX_SEEN`` observations kept per open
  impression, at most ``open_limit`` users in the open index (the one whose
  deadline is nearest is closed early), and the record expires ``ttl``
  seconds after its last change.
* The text a prompt held (needed to tell an edit from a cancel) is kept only
  while the prompt is open and is dropped when its outcome is decided.
* The decision itself is ``effectiveness.classify`` — pure; this module only
  keeps its inputs. Time is passed in, never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .effectiveness import Impression, Observation, classify
from .stores import Store, StoreError

#: Defaults (config: ``banners.history_*``).
DEFAULT_PER_USER = 50
DEFAULT_TTL = 30 * 24 * 3600.0
DEFAULT_OPEN_LIMIT = 10_000
#: Observations kept per open impression: classification needs the first
#: answer and the first message after it; warnings need which kinds occurred.
MAX_SEEN = 16
#: Compare-and-set attempts before a change is given up (and counted).
MAX_ATTEMPTS = 8
OPEN_INDEX = "banners:open"

Item = dict[str, Any]


class HistoryConflict(StoreError):
    """Too many concurrent writers on one user's record; the change was dropped."""


@dataclass(slots=True)
class Change:
    """What one update did: outcomes it decided (impression item, outcome, at)."""

    decided: list[tuple[Item, str, float]] = field(default_factory=list)


def user_key(user: str) -> str:
    return f"banners:user:{user}"


def hold_key(hold: str) -> str:
    return f"banners:hold:{hold}"


def here_key(user: str) -> str:
    return f"banners:here:{user}"


def item_of(impression: Impression, deadline: float, hold: str | None) -> Item:
    item: Item = {
        "id": impression.id,
        "banner": impression.banner,
        "variant": impression.variant,
        "audience": impression.audience,
        "trigger": impression.trigger,
        "kind": impression.kind,
        "conversation": impression.conversation,
        "at": impression.at,
        "outcome": None,
        "decided_at": None,
    }
    if impression.kind != "notice":
        item.update(open=True, deadline=deadline, risky=list(impression.risky), seen=[])
        if hold is not None:
            item["hold"] = hold
    return item


def impression_of(item: Item, user: str) -> Impression:
    return Impression(
        id=item["id"],
        banner=item["banner"],
        variant=item["variant"],
        audience=item["audience"],
        trigger=item["trigger"],
        user=user,
        at=float(item["at"]),
        kind=item["kind"],
        conversation=item.get("conversation", ""),
        risky=tuple(item.get("risky", ())),
    )


def public(item: Item) -> dict[str, Any]:
    """An item as moderators and evidence see it (no held text, no raw observations)."""
    return {
        k: item.get(k)
        for k in (
            "id",
            "banner",
            "variant",
            "audience",
            "trigger",
            "kind",
            "conversation",
            "at",
            "outcome",
            "decided_at",
        )
    }


# -- pure changes to one user's record ------------------------------------------


def _decide(user: str, item: Item, now: float, *, closed: bool, change: Change) -> None:
    seen = [Observation(s[0], float(s[1]), s[2], s[3]) for s in item.get("seen", ())]
    outcome = classify(impression_of(item, user), seen, window_closed=closed)
    if outcome is None:
        return
    item["outcome"], item["decided_at"] = outcome, now
    for transient in ("open", "deadline", "risky", "seen", "hold"):
        item.pop(transient, None)
    change.decided.append((item, outcome, now))


def add(items: list[Item], user: str, new: Item, per_user: int, change: Change) -> None:
    items.append(new)
    # Kept in time order, whichever replica wrote first.
    items.sort(key=lambda i: float(i["at"]))
    while len(items) > per_user:
        victim = next((i for i in items if i["kind"] == "notice"), None)
        victim = victim or next((i for i in items if not i.get("open")), None) or items[0]
        if victim.get("open"):
            _decide(user, victim, new["at"], closed=True, change=change)
        items.remove(victim)


def observe(
    items: list[Item],
    user: str,
    observation: Observation,
    relevant: Callable[[Impression, Observation], bool],
    change: Change,
) -> None:
    for item in items:
        if not item.get("open") or not relevant(impression_of(item, user), observation):
            continue
        seen: list[list[Any]] = item["seen"]
        if len(seen) < MAX_SEEN:
            seen.append(
                [observation.what, observation.at, observation.conversation, observation.text]
            )
        _decide(user, item, observation.at, closed=False, change=change)


def answer(
    items: list[Item], user: str, impression_id: str, what: str, at: float, change: Change
) -> None:
    for item in items:
        if item["id"] == impression_id and item.get("open"):
            item["seen"].insert(0, [what, at, "", ""])
            del item["seen"][MAX_SEEN:]
            _decide(user, item, at, closed=False, change=change)


def sweep(items: list[Item], user: str, now: float, change: Change, *, force: bool = False) -> None:
    for item in items:
        if item.get("open") and (force or float(item["deadline"]) <= now):
            _decide(user, item, now, closed=True, change=change)


def next_deadline(items: Iterable[Item]) -> float | None:
    deadlines = [float(i["deadline"]) for i in items if i.get("open")]
    return min(deadlines) if deadlines else None


# -- the store ring ---------------------------------------------------------------


class BannerHistory:
    """Per-user banner history and open impressions, shared through the Store."""

    def __init__(
        self,
        store: Store,
        *,
        per_user: int = DEFAULT_PER_USER,
        ttl: float = DEFAULT_TTL,
        open_limit: int = DEFAULT_OPEN_LIMIT,
    ) -> None:
        if per_user < 1 or open_limit < 1:
            raise ValueError("per_user and open_limit must be at least 1")
        self.store = store
        self.per_user = per_user
        self.ttl = ttl
        self.open_limit = open_limit

    async def items(self, user: str) -> list[Item]:
        raw = await self.store.get(user_key(user))
        return _parse(raw)

    async def update(self, user: str, edit: Callable[[list[Item], Change], None]) -> Change:
        """Apply ``edit`` to the user's items atomically; keep the open index in step."""
        for _ in range(MAX_ATTEMPTS):
            raw = await self.store.get(user_key(user))
            items = _parse(raw)
            change = Change()
            edit(items, change)
            value = json.dumps({"items": items}, separators=(",", ":")).encode()
            if value == raw:
                return change
            if await self.store.compare_and_set(user_key(user), raw, value, ttl=self.ttl):
                await self._index(user, items)
                return change
        raise HistoryConflict(f"banner history of {user!r}: too many concurrent changes")

    async def _index(self, user: str, items: list[Item]) -> None:
        deadline = next_deadline(items)
        if deadline is not None:
            await self.store.index_add(OPEN_INDEX, user, deadline)
            return
        if await self.store.index_remove(OPEN_INDEX, user):
            # A concurrent writer may have opened one since we read: look again.
            again = next_deadline(await self.items(user))
            if again is not None:
                await self.store.index_add(OPEN_INDEX, user, again)

    async def open_users(self) -> list[tuple[str, float]]:
        """Users with open impressions and their nearest deadline, nearest first."""
        return await self.store.index_members(OPEN_INDEX)

    async def over_limit(self) -> list[str]:
        """Users to close early so the open index keeps within ``open_limit``."""
        size = await self.store.index_size(OPEN_INDEX)
        if size <= self.open_limit:
            return []
        members = await self.store.index_members(OPEN_INDEX)
        return [user for user, _ in members[: size - self.open_limit]]

    async def remember_hold(self, hold: str, user: str, impression_id: str, ttl: float) -> None:
        body = json.dumps({"user": user, "id": impression_id}).encode()
        await self.store.set(hold_key(hold), body, ttl=ttl)

    async def take_hold(self, hold: str) -> tuple[str, str] | None:
        raw = await self.store.get(hold_key(hold))
        if raw is None or not await self.store.delete(hold_key(hold)):
            return None  # unknown, or another replica took it first
        try:
            body = json.loads(raw)
            return str(body["user"]), str(body["id"])
        except (ValueError, KeyError, TypeError):
            return None

    async def mark_here(self, user: str, instance: str, ttl: float) -> None:
        """``instance`` holds a session of ``user`` (for ``ttl`` seconds)."""
        await self.store.set(here_key(user), instance.encode(), ttl=ttl)

    async def here(self, user: str) -> str | None:
        """The instance that last marked ``user`` present, if the mark is live."""
        value = await self.store.get(here_key(user))
        return value.decode() if value is not None else None

    async def unmark_here(self, user: str, instance: str) -> None:
        """Withdraw ``instance``'s own mark (not another instance's newer one)."""
        await self.store.compare_and_set(here_key(user), instance.encode(), None)

    # -- readers: the console and evidence ---------------------------------------

    async def shown(self, user: str, limit: int) -> Sequence[Mapping[str, Any]]:
        """Banners ``user`` was shown, newest first, with outcomes (None: not yet)."""
        items = await self.items(user)
        return [public(i) for i in reversed(items)][: max(0, limit)]

    async def in_conversation(
        self, users: Iterable[str], conversation: str, limit: int
    ) -> list[dict[str, Any]]:
        """Banners shown to ``users`` in ``conversation``, oldest first, at most ``limit``."""
        out: list[dict[str, Any]] = []
        for user in sorted(set(users)):
            for item in await self.items(user):
                if item.get("conversation") == conversation:
                    out.append({"user": user, **public(item)})
        out.sort(key=lambda i: (i["at"], i["id"]))
        return out[-limit:] if limit > 0 else []


def _parse(raw: bytes | None) -> list[Item]:
    if raw is None:
        return []
    try:
        body = json.loads(raw)
        items = body["items"]
    except (ValueError, KeyError, TypeError):
        return []  # a damaged record is replaced rather than blocking the user's banners
    return [i for i in items if isinstance(i, dict) and "id" in i and "at" in i]
