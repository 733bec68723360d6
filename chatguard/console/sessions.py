"""Console sign-in sessions: who a session cookie belongs to, and its CSRF token.

What it owns: a bounded table of sessions, each a random id (the cookie
value), the account id, a CSRF token and an expiry time.

Invariants: ids and CSRF tokens are 256-bit random values; an expired
session is never returned; at most ``max_sessions`` are held — the oldest is
dropped first; time is passed in. Sessions live in this process: behind a
load balancer, send a moderator to the same replica (or use the SSO header).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    account: str
    csrf: str
    expires: float
    via: str = "password"  # or "sso"


class SessionTable:
    def __init__(self, ttl: float, max_sessions: int) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, account: str, now: float, via: str = "password") -> Session:
        session = Session(
            secrets.token_urlsafe(32), account, secrets.token_urlsafe(32), now + self.ttl, via
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= now:
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")
