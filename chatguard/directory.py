"""Who is who: attested age bands of users and who is in which room.

The policy needs to know the recipient's age band (a message to a child is
judged differently) and who is in a room (a banner for a room's minors). The
sender's session knows only its own user; the recipient's attested band was
learned by whichever session holds the recipient, possibly on another
replica. So attested bands are written to the shared store when a session's
identity becomes known, and read from there.

Room membership is learned from the upstream's join and leave events, which
every member's session sees; it is kept per relay instance (bounded), so on
several replicas a room's membership is what this instance has seen.

Invariants: only attested values are written (never what a client claims);
entries expire (``USER_TTL``) so departed users do not linger; a store
failure degrades to "unknown", never to an error in the chat path.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

from .events import Identity
from .stores import Store, StoreError

USER_TTL = 24 * 3600.0
#: Bounds on the local room table.
MAX_ROOMS = 10_000
MAX_MEMBERS = 5_000


class Directory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._rooms: OrderedDict[str, set[str]] = OrderedDict()

    # -- attested age bands ---------------------------------------------------

    async def record(self, identity: Identity) -> None:
        with contextlib.suppress(StoreError):
            # An attestation without an age band says nothing about age (a
            # second connection attested only by the server, say): it must
            # not wipe out the band another attestation gave.
            if identity.age_band != "unknown":
                await self.store.set(
                    f"user:{identity.user_id}:age_band", identity.age_band.encode(), ttl=USER_TTL
                )
            # Banners for this user shown from another session speak their language.
            for attr in ("locale", "region"):
                if identity.attrs.get(attr):
                    await self.store.set(
                        f"user:{identity.user_id}:{attr}",
                        identity.attrs[attr].encode(),
                        ttl=USER_TTL,
                    )

    async def attr(self, user: str, name: str) -> str | None:
        """An attested ``locale`` or ``region`` of a user, when known."""
        try:
            value = await self.store.get(f"user:{user}:{name}")
        except StoreError:
            return None
        return value.decode() if value else None

    async def age_band(self, user: str) -> str:
        try:
            value = await self.store.get(f"user:{user}:age_band")
        except StoreError:
            return "unknown"
        return value.decode() if value else "unknown"

    # -- room membership -----------------------------------------------------

    def joined(self, room: str, user: str) -> None:
        members = self._rooms.get(room)
        if members is None:
            if len(self._rooms) >= MAX_ROOMS:
                self._rooms.popitem(last=False)
            members = self._rooms[room] = set()
        else:
            self._rooms.move_to_end(room)
        if len(members) < MAX_MEMBERS:
            members.add(user)

    def left(self, room: str, user: str) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.discard(user)
            if not members:
                del self._rooms[room]

    def members(self, room: str) -> frozenset[str]:
        return frozenset(self._rooms.get(room, ()))
