"""Prometheus metrics of one ChatGuard instance.

What it owns: every metric name, its labels and its help text, in one place,
registered in a registry owned by the instance (no module-level registry, so
several instances in one process — as in tests — never collide).

Invariants: label values come from small closed sets (sides, event kinds,
reasons), never from user input, so cardinality stays bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Pipeline time is normally microseconds; buckets reach into milliseconds to
# show a slow step or store.
_PIPELINE_BUCKETS = (
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.1,
)

# Case handling times run from seconds to days.
_CASE_BUCKETS = (10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 72 * 3600.0)


class Metrics:
    """All metrics of one instance, registered in ``self.registry``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.connections_open = Gauge(
            "chatguard_connections_open", "Client sessions currently open.", registry=r
        )
        self.connections_total = Counter(
            "chatguard_connections", "Client sessions accepted.", registry=r
        )
        self.connections_refused = Counter(
            "chatguard_connections_refused",
            "Client sessions refused before pairing, by reason.",
            ["reason"],
            registry=r,
        )
        self.frames = Counter(
            "chatguard_frames",
            "WebSocket frames relayed, by the side that sent them.",
            ["origin"],
            registry=r,
        )
        self.bytes = Counter(
            "chatguard_bytes",
            "Payload bytes relayed, by the side that sent them.",
            ["origin"],
            registry=r,
        )
        self.events = Counter(
            "chatguard_chat_events",
            "Chat events decoded, by kind and origin.",
            ["kind", "origin"],
            registry=r,
        )
        self._event_children: dict[tuple[str, str], Counter] = {}
        self.verdicts = Counter(
            "chatguard_verdicts",
            "Pipeline verdicts that changed a frame: dropped, replaced, injected.",
            ["effect"],
            registry=r,
        )
        self.pipeline_seconds = Histogram(
            "chatguard_pipeline_seconds",
            "Time spent in the pipeline per decoded event.",
            buckets=_PIPELINE_BUCKETS,
            registry=r,
        )
        self.pipeline_errors = Counter(
            "chatguard_pipeline_errors",
            "Pipeline steps that raised; the frame was passed on unchanged.",
            ["step"],
            registry=r,
        )
        self.upstream_connect_failures = Counter(
            "chatguard_upstream_connect_failures",
            "Failed attempts to open the upstream connection, by reason.",
            ["reason"],
            registry=r,
        )
        self.closes = Counter(
            "chatguard_session_closes",
            "Sessions closed, by which side or limit ended them.",
            ["cause"],
            registry=r,
        )
        self.deliveries = Counter(
            "chatguard_deliveries",
            "Directives to users' live sessions: delivered, malformed, unpublished.",
            ["outcome"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "chatguard_policy_reloads",
            "Policy pack loads: loaded, or refused (the previous pack stayed in force).",
            ["outcome"],
            registry=r,
        )
        self.signals = Counter(
            "chatguard_policy_signals",
            "Policy signals matched in messages, by signal.",
            ["signal"],
            registry=r,
        )
        self.actions = Counter(
            "chatguard_policy_actions",
            "Policy actions decided, by type and mode (enforce or shadow).",
            ["type", "mode"],
            registry=r,
        )
        self.holds = Counter(
            "chatguard_holds",
            "Held messages by outcome: held, sent, cancelled, expired_sent, expired_cancelled.",
            ["outcome"],
            registry=r,
        )
        self.handoffs = Counter(
            "chatguard_handoffs",
            "Captures and escalations handed to their sinks, by kind and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "chatguard_http_requests",
            "Plain HTTP requests reverse-proxied, by response status class.",
            ["status"],
            registry=r,
        )
        # -- banners (speed bumps): restraint and effectiveness --
        self.banner_impressions = Counter(
            "chatguard_banner_impressions",
            "Banners shown, by banner, variant, audience and trigger.",
            ["banner", "variant", "audience", "trigger"],
            registry=r,
        )
        self.banner_outcomes = Counter(
            "chatguard_banner_outcomes",
            "Outcomes of banner impressions, by banner, variant and outcome.",
            ["banner", "variant", "outcome"],
            registry=r,
        )
        self.banners_suppressed = Counter(
            "chatguard_banners_suppressed",
            "Banners held back by restraint: cap, cooldown, per_minute, once_per_session.",
            ["reason"],
            registry=r,
        )
        self.banner_log_errors = Counter(
            "chatguard_banner_log_errors",
            "Impression or outcome events that could not be written to the banner event log.",
            registry=r,
        )
        self.reports = Counter(
            "chatguard_reports",
            "In-chat reports by outcome: accepted, refused (bad frame), limited (too many).",
            ["outcome"],
            registry=r,
        )

        # -- cases (chatguard/cases/) --
        self.cases_opened = Counter(
            "chatguard_cases_opened",
            "Cases opened from escalations, by severity.",
            ["severity"],
            registry=r,
        )
        self.cases_refused = Counter(
            "chatguard_cases_refused",
            "Escalations refused because the queue held cases.max_open open cases.",
            registry=r,
        )
        self.case_queue_depth = Gauge(
            "chatguard_case_queue_depth",
            "Open cases by severity (shared queue, as last counted by this instance).",
            ["severity"],
            registry=r,
        )
        self.case_time_to_claim = Histogram(
            "chatguard_case_time_to_claim_seconds",
            "Seconds from a case's creation to its first claim.",
            buckets=_CASE_BUCKETS,
            registry=r,
        )
        self.case_time_to_action = Histogram(
            "chatguard_case_time_to_action_seconds",
            "Seconds from a case's creation to its first action (live action, dismiss, report).",
            buckets=_CASE_BUCKETS,
            registry=r,
        )
        self.case_actions = Counter(
            "chatguard_case_actions",
            "Moderator actions taken on cases, by type.",
            ["type"],
            registry=r,
        )
        self.sanctions_enforced = Counter(
            "chatguard_sanctions_enforced",
            "Messages dropped or connections refused because of a sanction, by kind.",
            ["kind"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "chatguard_webhook_deliveries",
            "Case webhook attempts by outcome: delivered, retry, failed, dropped.",
            ["outcome"],
            registry=r,
        )
        self.console_sign_ins = Counter(
            "chatguard_console_sign_ins",
            "Console sign-in attempts by outcome: ok, refused, limited, sso.",
            ["outcome"],
            registry=r,
        )

        # -- evidence log (chatguard/evidence/log.py) --
        self.evidence_records = Counter(
            "chatguard_evidence_records",
            "Evidence records made durable, by kind.",
            ["kind"],
            registry=r,
        )
        self.evidence_queue_full = Counter(
            "chatguard_evidence_queue_full",
            "Captures that found the evidence queue full and had to wait (back-pressure).",
            registry=r,
        )
        self.evidence_dropped = Counter(
            "chatguard_evidence_dropped",
            "Evidence records not written: queue still full after the wait, or log stopped.",
            ["kind"],
            registry=r,
        )
        self.evidence_queue_depth = Gauge(
            "chatguard_evidence_queue_depth",
            "Evidence records waiting to be written.",
            registry=r,
        )
        self.evidence_write_errors = Counter(
            "chatguard_evidence_write_errors",
            "Groups of evidence records whose write failed (none of them acknowledged).",
            registry=r,
        )
        self.evidence_purged = Counter(
            "chatguard_evidence_purged",
            "Evidence payloads removed by retention (leaf hashes and tombstones stay).",
            registry=r,
        )
        self.bad_frames = Counter(
            "chatguard_bad_frames",
            "Frames a codec judged bad input (too large, too deep, unsafe or malformed), by "
            "origin, reason and action (refused or passed).",
            ["origin", "reason", "action"],
            registry=r,
        )
        self.banner_history_errors = Counter(
            "chatguard_banner_history_errors",
            "Banner history changes not applied: queue_full, store (unavailable), conflict.",
            ["reason"],
            registry=r,
        )

        self.bad_lines = Counter(
            "chatguard_irc_bad_lines",
            "IRC lines over the line or tag limit (too_long) or carrying NUL or a bare CR "
            "(bad_byte), by origin and what was done (refuse or pass).",
            ["origin", "problem", "action"],
            registry=r,
        )

    def event_counter(self, kind: str, origin: str) -> Counter:
        """The pre-bound child for one (kind, origin): label lookup per event is costly."""
        key = (kind, origin)
        child = self._event_children.get(key)
        if child is None:
            child = self._event_children[key] = self.events.labels(kind=kind, origin=origin)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
