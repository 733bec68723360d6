"""A real console on a real aiohttp server, over a real case book and store.

``console_site`` starts the admin application with the console mounted
(memory store with a hand-moved clock, or a real Redis), moderators of every
role with passwords and API tokens, and gives helpers to make cases through
the book's escalation interface and to call the server over loopback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from chatguard.audit import MemoryAudit
from chatguard.cases.actions import Actions
from chatguard.cases.book import CaseBook
from chatguard.cases.model import Case
from chatguard.cases.webhooks import CaseWebhooks
from chatguard.config import ConsoleConfig, ConsoleSsoConfig, ModeratorAccount
from chatguard.console.accounts import token_hash
from chatguard.console.auth import Gate
from chatguard.console.seams import ConsoleSeams
from chatguard.console.web import ConsoleDeps, mount_console
from chatguard.directory import Directory
from chatguard.events import Identity
from chatguard.metrics import Metrics
from chatguard.steps.handoff import EscalationRequest
from chatguard.stores import MemoryStore, RedisStore, Store
from tests.support.clock import FakeClock

PASSWORD = "a long enough password"
#: id -> role; each has the password above and the token ``token-<id>``.
MODERATORS = {"mia": "moderator", "max": "moderator", "lea": "lead", "aud": "auditor"}


@pytest.fixture(scope="session")
def password_hash() -> str:
    # Cheap argon2 parameters keep sign-in tests fast; verification reads them
    # from the hash, exactly as with the production defaults.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def accounts(password_hash: str) -> tuple[ModeratorAccount, ...]:
    return tuple(
        ModeratorAccount(m, m.upper(), role, password_hash, token_hash(f"token-{m}"))  # type: ignore[arg-type]
        for m, role in MODERATORS.items()
    )


def bearer(moderator: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{moderator}"}


def escalation(
    sender: str = "bob",
    recipient: str = "amy",
    *,
    severity: str = "medium",
    category: str = "grooming",
    evidence: tuple[str, ...] = ("rec-1",),
    at: float | None = None,
) -> EscalationRequest:
    return EscalationRequest(
        at=at if at is not None else time.time(),
        conversation=f"dm:{min(sender, recipient)}:{max(sender, recipient)}",
        session_id="s-1",
        sender=sender,
        recipients=(recipient,),
        severity=severity,
        category=category,
        risk=9.5,
        signals=("risk_assessment", "secrecy"),
        reason="risk>=8",
        evidence=evidence,
    )


@dataclass
class ConsoleSite:
    server: TestServer
    app: web.Application
    gate: Gate
    book: CaseBook
    store: Store
    audit: MemoryAudit
    clock: Callable[[], float]
    directory: Directory
    metrics: Metrics
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def client(self) -> aiohttp.ClientSession:
        # unsafe: accept cookies from an IP-address host (the loopback server).
        session = aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(session)
        return session

    async def case(self, sender: str = "bob", recipient: str = "amy", **kw: Any) -> Case:
        await self.directory.record(Identity(recipient, recipient, {"age_band": "minor"}))
        await self.directory.record(Identity(sender, sender, {"age_band": "adult"}))
        return await self.book.add(escalation(sender, recipient, **kw))

    def audited(self, action: str) -> list[Mapping[str, Any]]:
        return [
            {"actor": e.actor, "subject": e.subject, **e.details}
            for _, e in self.audit.entries
            if e.action == action
        ]


SiteFactory = Callable[..., Any]


@pytest_asyncio.fixture(params=["memory", "redis"])
async def make_site(
    request: pytest.FixtureRequest, password_hash: str
) -> AsyncIterator[SiteFactory]:
    """Build a console site; ``make_site(seams=..., sso=..., **console_keys)``."""
    sites: list[ConsoleSite] = []

    async def factory(
        seams: ConsoleSeams | None = None,
        sso: ConsoleSsoConfig | None = None,
        moderators: Sequence[ModeratorAccount] | None = None,
        webhooks: CaseWebhooks | None = None,
        **keys: Any,
    ) -> ConsoleSite:
        clock: Callable[[], float]
        store: Store
        if request.param == "memory":
            clock = FakeClock(time.time())
            store = MemoryStore(clock)
        else:
            url: str = request.getfixturevalue("redis_url")
            prefix: str = request.getfixturevalue("redis_prefix")
            store = RedisStore(url, prefix)
            clock = time.time
        audit = MemoryAudit()
        metrics = Metrics()
        book = CaseBook(store, audit, clock=clock, actions=Actions(store, None, clock))
        config = ConsoleConfig(
            moderators=tuple(moderators) if moderators is not None else accounts(password_hash),
            sso=sso or ConsoleSsoConfig(),
            **{"secure_cookies": False, **keys},
        )
        app = web.Application()
        directory = Directory(store)
        gate = mount_console(
            app,
            config,
            ConsoleDeps(
                book,
                audit,
                clock,
                store=store,
                directory=directory,
                metrics=metrics,
                webhooks=webhooks,
                seams=seams or ConsoleSeams(),
            ),
        )
        assert gate is not None
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        site = ConsoleSite(server, app, gate, book, store, audit, clock, directory, metrics)
        sites.append(site)
        return site

    try:
        yield factory
    finally:
        for site in sites:
            for session in site.sessions:
                await session.close()
            await site.server.close()
            await site.store.close()
