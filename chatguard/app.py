"""Wiring: builds one ChatGuard instance from a ``Config`` and runs it.

What it owns: which codec, pipeline, store and listeners an instance has, and
their start and stop order. It holds no logic of its own; the order of steps
on a message is in ``pipeline.py``, the I/O in ``relay/``.

Stop order: stop accepting, close sessions with 1001 (bounded by
``limits.drain_timeout``), then release the listeners and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from aiohttp import web

from . import native
from .admin import admin_app
from .audit import AuditSink, MemoryAudit
from .banner_history import BannerHistory
from .cases.actions import Actions
from .cases.book import BookLimits, CaseBook
from .cases.model import Bounds
from .cases.webhooks import CaseWebhooks
from .codecs import Codec, JsonChatCodec
from .codecs.irc import IrcCodec
from .codecs.xmpp import XmppCodec, XmppSettings
from .config import Config
from .console.recorded import RecordedConversations
from .console.records import EvidenceRecords
from .console.seams import ConsoleSeams
from .console.web import ConsoleDeps, mount_console
from .console.wired import BannerFigures, LogCapturer, LogExporter, LogRecords
from .directory import Directory
from .events import Identity
from .evidence.log import EvidenceLog
from .identity import IdentityResolver
from .live_policy import LivePolicy
from .metrics import Metrics
from .outcome_log import OutcomeLog, OutcomeTracker
from .pipeline import ControlStep, Pipeline, Step
from .relay import Relay
from .relay.core import SessionCore
from .relay.delivery import Deliveries
from .relay.ircws import IrcWebSocketBridge
from .relay.tcp import IrcUpstream, TcpRelay
from .reports import ReportPolicy, Reports
from .restraint import Restraint, RestraintPolicy
from .steps.handoff import CaptureStep, EscalateStep, EscalationSink, EvidenceSink, RecordingSink
from .steps.policy import PolicyStep
from .steps.sanctions import Admission, SanctionsStep
from .steps.showing import BannerShower
from .steps.speedbumps import HoldPolicy, SpeedBumpStep
from .stores import Store, StoreError, open_store

log = logging.getLogger(__name__)


#: The codec for each ``codec.type``: one line per protocol.
CODECS: dict[str, Callable[[Config], Codec]] = {
    "jsonchat": lambda cfg: JsonChatCodec.from_name_or_path(cfg.codec.mapping),
    "xmpp": lambda cfg: XmppCodec(
        XmppSettings(
            cfg.xmpp.service_jid,
            cfg.xmpp.max_stanza_bytes,
            cfg.xmpp.max_depth,
            cfg.xmpp.on_bad_stanza,
        )
    ),
    "irc": lambda cfg: IrcCodec(
        cfg.irc.service_name,
        service_host=cfg.irc.service_host,
        max_line_bytes=cfg.irc.max_line_bytes,
        max_tag_bytes=cfg.irc.max_tag_bytes,
    ),
}


def make_codec(config: Config) -> Codec:
    """The codec ``codec.type`` names."""
    return CODECS[config.codec.type](config)


def _control_field(codec: Codec) -> str:
    """The field naming a control frame's type: the jsonchat mapping's own."""
    return ".".join(codec.type_path) if isinstance(codec, JsonChatCodec) else "type"


class ChatGuard:
    """One sidecar instance: relay listener, admin listener, shared state."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        steps: Mapping[str, Step] | None = None,
        evidence: EvidenceSink | None = None,
        escalations: EscalationSink | None = None,
        audit: AuditSink | None = None,
        seams: ConsoleSeams | None = None,
    ) -> None:
        self.config = config
        self.instance_id = config.instance_id or socket.gethostname()
        self.metrics = Metrics()
        self.codec = make_codec(config)
        self.identity = IdentityResolver(config.identity)
        self._own_store = store is None
        self.store = store or open_store(
            config.store.backend,
            redis_url=config.store.redis_url,
            key_prefix=config.store.key_prefix,
            max_keys=config.store.max_keys,
            clock=time.time,
        )
        self.deliveries = Deliveries(self.store, self._sessions, self.metrics)
        self.directory = Directory(self.store)
        # Until the evidence log and case queue are configured, captures and
        # escalations are kept in memory so an operator can see them.
        self.recorded = RecordingSink()
        # The evidence log, when enabled, keeps captures and is the audit sink
        # (custody and case records go into the same tamper-evident log).
        self.evidence_log: EvidenceLog | None = None
        self.audit: AuditSink = MemoryAudit()
        if config.evidence.enabled:
            self.evidence_log = EvidenceLog(
                config.evidence, Path(config.data_dir), self.instance_id, self.metrics
            )
            self.audit = self.evidence_log
            evidence = evidence or self.evidence_log
        if audit is not None:
            self.audit = audit
        # Without a policy pack the pipeline only consumes control frames.
        self.control = ControlStep(
            type_field=_control_field(self.codec),
            per_minute=config.limits.control_per_minute,
        )
        self.outcomes: OutcomeTracker | None = None
        # Banners shown and their outcomes, per user, shared by every replica.
        self.banner_history = BannerHistory(
            self.store,
            per_user=config.banners.history_per_user,
            ttl=config.banners.history_ttl,
            open_limit=config.banners.history_open_limit,
        )
        self.live: LivePolicy | None = None
        self.speedbumps: SpeedBumpStep | None = None
        self._cases()
        policy_steps: dict[str, Step] = {}
        if config.policy.directory:
            policy_steps = self._policy_steps(evidence or self.recorded, escalations or self.cases)
        self.pipeline = Pipeline(
            {"control": self.control, **policy_steps, **(steps or {})}, self.metrics
        )
        irc = config.codec.type == "irc"
        record = self._record_attested if irc else self.directory.record
        bridge = None
        if irc:
            bridge = IrcWebSocketBridge(config, self.codec, self.pipeline, self.metrics)
        self.relay = Relay(
            config,
            self.codec,
            self.pipeline,
            self.metrics,
            self.identity,
            record,
            admit=self.admission.check,
            bridge=bridge,
        )
        # IRC clients over TCP: their own listener, the same pipeline.
        self.irc_relay: TcpRelay | None = None
        if irc and config.irc.listen.enabled:
            self.irc_relay = TcpRelay(
                config, self.codec, self.pipeline, self.metrics, record, self.admission.check
            )
        self.relay.app.cleanup_ctx.append(self._background)
        self.admin = admin_app(
            self.metrics,
            {
                "upstream": (
                    IrcUpstream(config, self.metrics).reachable
                    if irc
                    else self.relay.upstream_reachable
                ),
                "store": self.store.ping,
            },
        )
        self.console = mount_console(
            self.admin,
            config.console,
            ConsoleDeps(
                self.cases,
                self.audit,
                time.time,
                store=self.store,
                directory=self.directory,
                metrics=self.metrics,
                webhooks=self.webhooks,
                # Without an evidence log, the flagged messages kept in memory.
                seams=seams or self._console_seams(),
            ),
        )
        self._runners: list[web.AppRunner] = []
        self.relay_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None
        self.irc_address: tuple[str, int] | None = None

    def _sessions(self) -> list[SessionCore]:
        """Every live session of this instance, on every listener."""
        out: list[SessionCore] = list(self.relay.sessions)
        if self.irc_relay is not None:
            out.extend(self.irc_relay.sessions)
        return out

    async def _record_attested(self, identity: Identity) -> Identity | None:
        """An IRC server attests a nick, not an age band.

        An identity that carries a band (gateway header, JWT) records it; a
        bare nick takes the band the operator's systems wrote to the
        directory for that nick, and never overwrites it.
        """
        if "age_band" in identity.attrs:
            await self.directory.record(identity)
            return None
        band = await self.directory.age_band(identity.user_id)
        if band == "unknown":
            return None
        return dataclasses.replace(identity, attrs={**identity.attrs, "age_band": band})

    def _console_seams(self) -> ConsoleSeams:
        """What the console shows beside cases: evidence and banner figures."""
        banners = BannerFigures(Path(self.config.data_dir) / "banners")
        if self.evidence_log is None:
            # Without an evidence log, the flagged messages kept in memory.
            return ConsoleSeams(
                conversations=RecordedConversations(self.recorded),
                banners=banners,
                banner_history=self.banner_history,
            )
        records = EvidenceRecords(LogRecords(self.evidence_log), self.directory)
        return ConsoleSeams(
            evidence=LogExporter(self.evidence_log),
            capturer=LogCapturer(self.evidence_log),
            conversations=records,
            reports=records,
            banners=banners,
            banner_history=self.banner_history,
        )

    def _cases(self) -> None:
        """The case book (the escalation sink), its webhook, and sanction enforcement."""
        cfg = self.config.cases
        # Case changes are audited where evidence custody is: the evidence log
        # when it is enabled, else memory.
        audit = self.audit
        self.webhooks = CaseWebhooks.from_config(cfg.webhook, self.metrics)
        self.cases = CaseBook(
            self.store,
            audit,
            clock=time.time,
            sla={
                "low": cfg.sla.low,
                "medium": cfg.sla.medium,
                "high": cfg.sla.high,
                "critical": cfg.sla.critical,
            },
            lease=cfg.lease,
            bounds=Bounds(
                max_history=cfg.max_history,
                max_notes=cfg.max_notes,
                max_escalations=cfg.max_escalations,
            ),
            limits=BookLimits(
                max_open=cfg.max_open,
                max_done=cfg.max_done,
                closed_ttl=cfg.closed_ttl,
                reported_ttl=cfg.reported_ttl,
                max_duration=cfg.max_sanction_seconds,
                reporting_service=cfg.reporting_service or self.instance_id,
            ),
            actions=Actions(self.store, self.deliveries),
            metrics=self.metrics,
            on_new=self.webhooks.offer if self.webhooks is not None else None,
        )
        self.sanctions = SanctionsStep(self.store, self.metrics, self.deliveries)
        self.admission = Admission(self.store, self.metrics)

    async def _count_cases(self) -> None:
        """Refresh the queue-depth gauge from the shared queue."""
        while True:
            # The gauge keeps its last value until the store is back.
            with contextlib.suppress(StoreError):
                await self.cases.counts()
            await asyncio.sleep(self.config.cases.counts_interval)

    def _policy_steps(self, evidence: EvidenceSink, escalations: EscalationSink) -> dict[str, Step]:
        cfg = self.config
        banners = Path(cfg.banners.directory) if cfg.banners.directory else None
        self.live = LivePolicy(
            Path(cfg.policy.directory),
            banners,
            self.metrics,
            backend=cfg.policy.backend,
            cache_dir=Path(cfg.data_dir) / "cache",
            settle_heap=True,
        )
        self.live.load_now()  # an invalid pack stops start-up with its errors
        self.speedbumps = self._speedbumps(evidence, escalations)
        self.control.register("chatguard.confirm", self.speedbumps.confirm)
        for command in ("send", "cancel"):
            self.control.register_command(command, self.speedbumps.command)
        return {
            # Without a pack nothing escalates, so there are no cases and no
            # sanctions; the pass-through pipeline keeps its unparsed fast path.
            "sanctions": self.sanctions,
            "policy": PolicyStep(
                self.live,
                self.store,
                self.directory,
                self.metrics,
                state_ttl=cfg.policy.state_ttl,
                max_recipients=cfg.policy.max_recipients,
            ),
            "banners": self.speedbumps,
            "evidence": CaptureStep(
                evidence,
                self.metrics,
                observe=self.evidence_log.observe if self.evidence_log is not None else None,
                history=self.banner_history,
            ),
            "escalate": EscalateStep(escalations, self.metrics),
        }

    def _speedbumps(self, evidence: EvidenceSink, escalations: EscalationSink) -> SpeedBumpStep:
        """Banners: restraint, outcome tracking, in-chat reports (issue 4)."""
        b = self.config.banners
        restraint = Restraint(
            self.store, RestraintPolicy(b.cap, b.cap_window, b.cooldown, b.per_minute)
        )
        events = OutcomeLog(
            Path(self.config.data_dir) / "banners", self.instance_id, b.log_max_bytes, b.log_keep
        )
        self.outcomes = OutcomeTracker(
            self.metrics,
            events,
            self.banner_history,
            window=b.outcome_window,
            deterrence_window=b.deterrence_window,
            queue_limit=b.history_queue,
        )
        shower = BannerShower(
            self.deliveries,
            self.directory,
            self.metrics,
            restraint=restraint,
            tracker=self.outcomes,
            default_locale=b.default_locale,
        )
        self.deliveries.wait = b.recipient_wait
        self.deliveries.on_shown = lambda session, notice: shower.shown(session.context, notice)
        r = self.config.reports
        self.reports = Reports(
            evidence,
            escalations,
            shower,
            self.live,
            self.store,
            self.metrics,
            ReportPolicy(r.per_minute, r.max_reason, r.context),
            tracker=self.outcomes,
        )
        self.control.register("chatguard.report", self.reports.control)
        self.control.register_command("report", self.reports.command)
        return SpeedBumpStep(
            self.deliveries,
            self.metrics,
            HoldPolicy(self.config.holds.timeout, self.config.holds.on_timeout),
            default_locale=b.default_locale,
            live=self.live,
            store=self.store,
            restraint=restraint,
            tracker=self.outcomes,
            shower=shower,
            recipient_wait=b.recipient_wait,
            first_contact_ttl=b.first_contact_ttl,
        )

    async def _background(self, app: web.Application) -> AsyncIterator[None]:
        """Tasks that live as long as the relay listener."""
        tasks = [asyncio.create_task(self.deliveries.run(), name="deliveries")]
        if self.config.cases.counts_interval > 0:
            tasks.append(asyncio.create_task(self._count_cases(), name="case-counts"))
        if self.webhooks is not None:
            tasks.append(asyncio.create_task(self.webhooks.run(), name="case-webhooks"))
        if self.live is not None and self.config.policy.watch:
            interval = self.config.policy.watch_interval
            tasks.append(asyncio.create_task(self.live.watch(interval), name="policy-watch"))
        if self.speedbumps is not None:
            tasks.append(asyncio.create_task(self._expire_holds(), name="holds"))
        if self.outcomes is not None:
            tasks.append(asyncio.create_task(self.outcomes.run(), name="banner-outcomes"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _expire_holds(self, interval: float = 1.0) -> None:
        """Give unanswered holds their default outcome."""
        assert self.speedbumps is not None
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for session in self._sessions():
                # Expired holds, and banners whose message never came.
                for item in self.speedbumps.tick(session.context, now):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await session.inject(item)
            if self.outcomes is not None:
                # Viewers connected to no replica count as leaving; ended
                # windows close. Presence marks outlive a few intervals.
                await self.outcomes.tick(now, self._users_online(), self.instance_id, 3 * interval)

    def _users_online(self) -> set[str]:
        return {
            s.context.identity.user_id for s in self._sessions() if s.context.identity is not None
        }

    @property
    def relay_url(self) -> str:
        assert self.relay_address is not None, "not started"
        return f"http://{self.relay_address[0]}:{self.relay_address[1]}"

    @property
    def admin_url(self) -> str:
        assert self.admin_address is not None, "not started"
        return f"http://{self.admin_address[0]}:{self.admin_address[1]}"

    async def start(self) -> None:
        cfg = self.config
        if self.evidence_log is not None:
            await self.evidence_log.start()
        self.relay_address = await self._listen(self.relay.app, cfg.listen.host, cfg.listen.port)
        if cfg.admin.enabled:
            self.admin_address = await self._listen(self.admin, cfg.admin.host, cfg.admin.port)
        if self.irc_relay is not None:
            self.irc_address = await self.irc_relay.start()

    async def _listen(self, app: web.Application, host: str, port: int) -> tuple[str, int]:
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        self._runners.append(runner)
        address = runner.addresses[0]
        return str(address[0]), int(address[1])

    async def stop(self) -> None:
        """Drain sessions (bounded), then release everything."""
        if self.irc_relay is not None:
            await self.irc_relay.stop(self.config.limits.drain_timeout)
        drained = await self.relay.drain(self.config.limits.drain_timeout)
        if not drained:
            log.warning("%d sessions still open after the drain timeout", len(self.relay.sessions))
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.outcomes is not None:
            # What the sessions did last reaches the shared history first.
            await self.outcomes.flush()
            if self.outcomes.log is not None:
                self.outcomes.log.close()
        if self.evidence_log is not None:
            # After the sessions: their last captures are written, then flushed.
            await self.evidence_log.stop()
        if self._own_store:
            await self.store.close()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``stop`` is set), then drain and stop."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[bool]] = set()
        if self.live is not None:
            live = self.live

            def on_hup() -> None:
                task = asyncio.ensure_future(live.reload())
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, on_hup)
        await self.start()
        log.info(
            "relay on %s -> %s; admin on %s; policy engine %s",
            self.relay_url,
            self.config.upstream.url,
            self.admin_url if self.admin_address else "off",
            "compiled" if native.compiled() else "pure Python",
        )
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            await self.stop()
