"""Console sign-in sessions: who a session cookie belongs to, and its CSRF token.

What it owns: sessions kept in the shared store, so a moderator signed in
through one replica's admin listener is signed in on all of them. A session
is a random id (the cookie value), the account id, a CSRF token and an
expiry time.

Store layout::

    console-session:<sha256 of the id>   the session as JSON, expiring with it
    index console-sessions:<account>     that account's sessions, scored by expiry

Invariants: ids and CSRF tokens are 256-bit random values; the store holds
only a hash of the id, so reading the store does not give a usable cookie;
an expired session is never returned (the store expires it, and the expiry is
checked again on read); at most ``per_account`` live sessions per account —
signing in once more ends the oldest; time is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from ..stores import Store

KEY = "console-session:"
INDEX = "console-sessions:"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    account: str
    csrf: str
    expires: float
    via: str = "password"  # or "sso"


def _key(session_id: str) -> str:
    return KEY + hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, store: Store, ttl: float, per_account: int) -> None:
        self.store = store
        self.ttl = ttl
        self.per_account = max(1, per_account)

    async def open(self, account: str, now: float, via: str = "password") -> Session:
        session = Session(
            secrets.token_urlsafe(32), account, secrets.token_urlsafe(32), now + self.ttl, via
        )
        body = asdict(session)
        del body["id"]  # only its hash is stored, as the key
        await self.store.set(_key(session.id), json.dumps(body).encode(), ttl=self.ttl)
        index = INDEX + account
        await self.store.index_add(index, _key(session.id), session.expires)
        live = []
        for member, expires in await self.store.index_members(index):
            if expires <= now:
                await self.store.index_remove(index, member)
            else:
                live.append((expires, member))
        live.sort()
        for _, member in live[: max(0, len(live) - self.per_account)]:
            await self.store.delete(member)
            await self.store.index_remove(index, member)
        return session

    async def get(self, session_id: str | None, now: float) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        raw = await self.store.get(_key(session_id))
        if raw is None:
            return None
        try:
            body = json.loads(raw)
            session = Session(
                session_id,
                str(body["account"]),
                str(body["csrf"]),
                float(body["expires"]),
                str(body.get("via", "password")),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > now else None

    async def close(self, session: Session) -> None:
        await self.store.delete(_key(session.id))
        await self.store.index_remove(INDEX + session.account, _key(session.id))

    async def count(self, account: str, now: float) -> int:
        """Live sessions of ``account``."""
        return sum(1 for _, e in await self.store.index_members(INDEX + account) if e > now)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")
