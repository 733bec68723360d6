"""Mounting the console (/console) and the JSON API (/api) on the admin listener.

What it owns: building the ``Gate`` and ``ConsoleService`` from the
configuration and what the instance offers, and adding both sub-applications
to the admin application.

Invariants: nothing is mounted when ``console.enabled`` is false; the
console's middlewares apply to its own paths only, so /healthz, /readyz and
/metrics keep answering without sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..audit import AuditSink
from ..cases.book import CaseBook
from ..cases.webhooks import CaseWebhooks
from ..config import ConsoleConfig
from ..directory import Directory
from ..metrics import Metrics
from ..stores import Store
from .accounts import Accounts
from .api import api_app
from .auth import Gate
from .pages import pages_app
from .seams import ConsoleSeams
from .service import ConsoleService

GATE = web.AppKey("console_gate", Gate)


@dataclass(slots=True)
class ConsoleDeps:
    """What an instance offers the console; the optional parts may be None."""

    book: CaseBook
    audit: AuditSink
    clock: Callable[[], float]
    store: Store | None = None
    directory: Directory | None = None
    metrics: Metrics | None = None
    webhooks: CaseWebhooks | None = None
    seams: ConsoleSeams = field(default_factory=ConsoleSeams)


def mount_console(
    admin: web.Application,
    config: ConsoleConfig,
    deps: ConsoleDeps,
    *,
    accounts: Accounts | None = None,
) -> Gate | None:
    """Add /console and /api to ``admin``; the gate (sessions, limits) or None when off."""
    if not config.enabled:
        return None
    accounts = accounts or Accounts.from_config(config.moderators)
    gate = Gate.build(config, accounts, deps.book.store, deps.clock, deps.metrics)
    service = ConsoleService(
        book=deps.book,
        audit=deps.audit,
        clock=deps.clock,
        store=deps.store,
        directory=deps.directory,
        evidence=deps.seams.evidence,
        banners=deps.seams.banners,
        banner_history=deps.seams.banner_history,
        conversations=deps.seams.conversations,
        reports=deps.seams.reports,
        capturer=deps.seams.capturer,
        webhooks=deps.webhooks,
    )

    async def to_console(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/console/")

    admin.router.add_get("/console", to_console)
    admin.add_subapp("/console", pages_app(service, gate))
    admin.add_subapp("/api", api_app(service, gate.api_middleware()))
    admin[GATE] = gate
    return gate
