"""Configuration: one YAML file plus environment overrides.

What it owns: the schema of every key (type, default, one line of doc), loading
and validating a file, and applying ``CHATGUARD__SECTION__KEY=value``
environment overrides.

Invariants:

* Every key has a default, so an empty file is a valid configuration.
* Unknown keys and bad values are refused with ``ConfigError`` naming the
  file, the dotted key and the reason; nothing is silently ignored.
* The loaded ``Config`` is frozen: a reload builds a new one.
* ``docs/configuration.md`` documents every key; a test checks that it does.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

ENV_PREFIX = "CHATGUARD__"


class ConfigError(ValueError):
    """A configuration problem, naming where it is."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


def _doc(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True, slots=True)
class ListenConfig:
    host: str = _doc("Address the relay listens on.", "127.0.0.1")
    port: int = _doc("Port the relay listens on; 0 picks a free port.", 8000)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    enabled: bool = _doc("Serve the admin listener (/healthz, /readyz, /metrics).", True)
    host: str = _doc("Address of the admin listener.", "127.0.0.1")
    port: int = _doc("Port of the admin listener; 0 picks a free port.", 8081)


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    url: str = _doc(
        "The one chat service ChatGuard fronts (ws:// or wss://). Clients never choose it.",
        "ws://127.0.0.1:9000",
    )
    connect_timeout: float = _doc("Seconds to open the upstream connection.", 5.0)
    tls_verify: bool = _doc("Verify the upstream's TLS certificate (wss://, https://).", True)
    http: bool = _doc("Reverse-proxy ordinary HTTP requests to the upstream.", True)
    forwarded_headers: bool = _doc("Add X-Forwarded-For / -Proto / -Host.", True)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_frame_bytes: int = _doc(
        "Largest WebSocket message accepted from either side; larger closes with 1009.",
        1_048_576,
    )
    max_connections: int = _doc(
        "Most concurrent client WebSocket sessions; beyond it upgrades get HTTP 503.", 10_000
    )
    idle_timeout: float = _doc(
        "Close a session (1001) when neither side sent anything for this many seconds; 0 = never.",
        300.0,
    )
    heartbeat: float = _doc(
        "Seconds between the relay's own pings on each leg; an unanswered ping closes the "
        "session. 0 disables.",
        30.0,
    )
    write_buffer_bytes: int = _doc(
        "Bytes buffered toward a slow reader before the relay stops reading from the other side.",
        65_536,
    )
    drain_timeout: float = _doc(
        "On SIGTERM, seconds to wait for sessions to close (code 1001) before exiting.", 10.0
    )
    max_http_body_bytes: int = _doc(
        "Largest HTTP request body reverse-proxied to the upstream; larger gets HTTP 413.",
        10_485_760,
    )
    control_per_minute: int = _doc(
        "Most ChatGuard control frames and commands (chatguard.*, /send, /report) one "
        "session may send per minute; beyond it each gets an error frame and does nothing. "
        "0 = no limit.",
        60,
    )


@dataclass(frozen=True, slots=True)
class HeaderIdentityConfig:
    user: str = _doc(
        "Header a trusted auth gateway sets to the user id; empty disables. The gateway "
        "must strip any client-supplied copy.",
        "",
    )
    name: str = _doc("Header carrying the display name (optional).", "")
    attrs: Mapping[str, str] = _doc(
        "Attribute name -> header, e.g. {age_band: X-Age-Band}.", factory=dict
    )


@dataclass(frozen=True, slots=True)
class JwtIdentityConfig:
    enabled: bool = _doc("Take identity from a verified JWT.", False)
    algorithms: tuple[str, ...] = _doc("Accepted signing algorithms.", ("RS256", "ES256", "EdDSA"))
    key: str = _doc(
        "Verification key: a PEM public key, or the HMAC secret for HS256. Use key_file instead "
        "to keep it out of the config.",
        "",
    )
    key_file: str = _doc("File holding the verification key.", "")
    audience: str = _doc("Required `aud` claim; empty = not checked.", "")
    issuer: str = _doc("Required `iss` claim; empty = not checked.", "")
    header: str = _doc("Header carrying `Bearer <token>`.", "Authorization")
    query: str = _doc("Query parameter carrying the token (browsers cannot set headers).", "")
    cookie: str = _doc("Cookie carrying the token.", "")
    user_claim: str = _doc("Claim holding the user id.", "sub")
    name_claim: str = _doc("Claim holding the display name.", "name")
    attr_claims: Mapping[str, str] = _doc(
        "Attribute name -> claim, e.g. {age_band: age_band}.", factory=dict
    )


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    welcome: bool = _doc(
        "Take identity from the upstream's welcome frame (as the codec mapping describes).", True
    )
    header: HeaderIdentityConfig = _doc(
        "Identity from a trusted gateway header.", factory=HeaderIdentityConfig
    )
    jwt: JwtIdentityConfig = _doc("Identity from a verified JWT.", factory=JwtIdentityConfig)


@dataclass(frozen=True, slots=True)
class CodecConfig:
    type: Literal["jsonchat", "xmpp", "irc"] = _doc(
        "Wire protocol of the upstream: jsonchat (JSON over WebSocket), xmpp or irc.", "jsonchat"
    )
    mapping: str = _doc(
        "jsonchat mapping: a built-in name (`example`) or a path to a mapping YAML file.",
        "example",
    )


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: Literal["memory", "redis"] = _doc(
        "Shared state backend; redis when several replicas must share state.", "memory"
    )
    redis_url: str = _doc("Redis URL for backend redis.", "redis://127.0.0.1:6379/0")
    key_prefix: str = _doc("Prefix of every key ChatGuard writes to Redis.", "chatguard:")
    max_keys: int = _doc("Bound on keys held by the memory backend.", 1_000_000)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    directory: str = _doc(
        "Policy pack directory (see policies/README.md); empty runs the pass-through pipeline.",
        "",
    )
    watch: bool = _doc("Reload the pack when its files change (SIGHUP always reloads).", True)
    watch_interval: float = _doc("Seconds between checks for changed policy files.", 2.0)
    backend: Literal["auto", "hyperscan", "fallback"] = _doc(
        "Matcher: Intel Hyperscan where installed (auto), else the portable fallback.", "auto"
    )
    state_ttl: float = _doc(
        "Seconds a conversation's risk state is kept after its last message.", 604_800.0
    )
    max_recipients: int = _doc("Most room members whose age band is looked up per message.", 50)


@dataclass(frozen=True, slots=True)
class BannersConfig:
    directory: str = _doc("Banner catalogue directory (see banners/README.md).", "")
    default_locale: str = _doc("Locale used when a user's own has no text.", "en")
    cap: int = _doc(
        "Most times one user sees one banner per `cap_window` (a banner's own `cap` wins; "
        "critical banners have none unless they set one).",
        3,
    )
    cap_window: float = _doc("Seconds of the per-user, per-banner cap window.", 3600.0)
    cooldown: float = _doc(
        "Seconds before one user sees the same banner again (critical banners: 0).", 60.0
    )
    per_minute: int = _doc(
        "Most banners one user sees per minute, all banners together; critical banners are "
        "not held back by it. 0 = no limit.",
        3,
    )
    recipient_wait: float = _doc(
        "Seconds a recipient's banner waits for the message it is about to reach their "
        "session, so it arrives after it; then it is shown anyway.",
        2.0,
    )
    first_contact_ttl: float = _doc(
        "Seconds two users who exchanged a direct message count as known to each other.",
        2_592_000.0,
    )
    outcome_window: float = _doc(
        "Seconds after a prompt or warning in which the viewer's acts decide its outcome.",
        300.0,
    )
    deterrence_window: float = _doc(
        "Seconds after a deterrence banner in which further risk signals from that sender "
        "count as `reoffended`.",
        1800.0,
    )
    log_max_bytes: int = _doc(
        "Size at which the banner event log `<data_dir>/banners/events-<instance>.jsonl` "
        "is rotated.",
        16_777_216,
    )
    log_keep: int = _doc("Rotated banner event log files kept per instance.", 5)
    history_per_user: int = _doc(
        "Impressions kept per user in the shared banner history (room notices go first).",
        50,
    )
    history_ttl: float = _doc(
        "Seconds a user's banner history is kept after its last change.", 2_592_000.0
    )
    history_open_limit: int = _doc(
        "Most users with impressions still waiting for an outcome; beyond it the nearest "
        "deadlines are closed early.",
        10_000,
    )
    history_queue: int = _doc(
        "Most banner history changes waiting for the store; beyond it they are dropped "
        "and counted.",
        10_000,
    )


@dataclass(frozen=True, slots=True)
class HoldsConfig:
    timeout: float = _doc("Seconds a held message waits for the sender's answer.", 120.0)
    on_timeout: Literal["cancel", "send"] = _doc(
        "What happens to a held message nobody answered.", "cancel"
    )
    per_session: int = _doc(
        "Most messages held at once per session; one more settles the oldest.", 8
    )


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    per_minute: int = _doc("Most in-chat reports one user may make per minute.", 5)
    max_reason: int = _doc("Longest report reason kept, in characters; longer is cut.", 500)
    context: int = _doc(
        "Recent messages of the reported conversation sent with the escalation.", 20
    )


@dataclass(frozen=True, slots=True)
class ModeratorAccount:
    id: str = _doc("Moderator id, shown in case history and audit records.", "")
    name: str = _doc("Display name shown in the console.", "")
    role: Literal["moderator", "lead", "auditor"] = _doc(
        "moderator works cases; lead also sees analytics; auditor reads and exports only.",
        "moderator",
    )
    password_hash: str = _doc(
        "argon2 hash from `chatguard console hash-password`; empty = no password sign-in.", ""
    )
    token_hash: str = _doc(
        "API token hash from `chatguard console token`; empty = no API access.", ""
    )


@dataclass(frozen=True, slots=True)
class ConsoleSsoConfig:
    header: str = _doc(
        "Header an SSO gateway sets to the signed-in moderator id; empty = not trusted.", ""
    )
    trusted_proxies: tuple[str, ...] = _doc(
        "Addresses or networks (CIDR) whose identity header is believed; others are ignored.",
        (),
    )


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    enabled: bool = _doc("Serve the moderator console and /api/ on the admin listener.", True)
    moderators: tuple[ModeratorAccount, ...] = _doc(
        "Moderator accounts: id, name, role, password_hash, token_hash.", ()
    )
    secure_cookies: bool = _doc(
        "Mark the session cookie Secure (HTTPS only); false only for plain-HTTP loopback.", True
    )
    session_ttl: float = _doc("Seconds a console sign-in lasts.", 28800.0)
    max_sessions: int = _doc(
        "Most console sessions per moderator; one more sign-in ends the oldest.", 5
    )
    login_max_failures: int = _doc(
        "Failed sign-ins per account, and per address, before sign-in is refused for a while.", 5
    )
    login_window: float = _doc("Seconds over which failed sign-ins are counted.", 900.0)
    sso: ConsoleSsoConfig = _doc("Identity from an SSO gateway.", factory=ConsoleSsoConfig)


@dataclass(frozen=True, slots=True)
class CaseSlaConfig:
    low: float = _doc("Seconds until a low-severity case is due.", 259_200.0)
    medium: float = _doc("Seconds until a medium-severity case is due.", 86_400.0)
    high: float = _doc("Seconds until a high-severity case is due.", 14_400.0)
    critical: float = _doc("Seconds until a critical case is due.", 3_600.0)


@dataclass(frozen=True, slots=True)
class CaseWebhookConfig:
    url: str = _doc("POST a summary of each new case here (http:// or https://); empty = off.", "")
    secret: str = _doc(
        "HMAC-SHA256 key for X-ChatGuard-Signature. Use secret_file to keep it out of the config.",
        "",
    )
    secret_file: str = _doc("File holding the webhook secret.", "")
    min_severity: Literal["low", "medium", "high", "critical"] = _doc(
        "Only cases opened at or above this severity are sent.", "high"
    )
    include_content: bool = _doc(
        "Add the escalations' policy reasons, signals and risk to the summary.", False
    )
    timeout: float = _doc("Seconds one POST may take.", 5.0)
    max_attempts: int = _doc("Attempts per case before giving up (first try included).", 5)
    backoff: float = _doc("Seconds before the first retry; doubles on each retry.", 1.0)
    backoff_max: float = _doc("Longest wait between retries, in seconds.", 60.0)
    max_queue: int = _doc(
        "Summaries waiting to be sent; when full, the new one is dropped and counted.", 1000
    )
    log_size: int = _doc("Delivery attempts kept in the in-memory delivery log.", 200)


@dataclass(frozen=True, slots=True)
class CasesConfig:
    lease: float = _doc(
        "Seconds a moderator's claim lasts; an abandoned claim returns the case to the queue.",
        900.0,
    )
    sla: CaseSlaConfig = _doc("Due time of a case by severity.", factory=CaseSlaConfig)
    max_open: int = _doc(
        "Most open cases; an escalation that would open one more is refused and counted.", 10_000
    )
    max_done: int = _doc(
        "Most reported or closed cases listed; older ones leave the list.", 100_000
    )
    closed_ttl: float = _doc("Seconds a closed case is kept after closing.", 7_776_000.0)
    reported_ttl: float = _doc(
        "Seconds a reported case is kept after its report (one year: 18 U.S.C. 2258A(h)).",
        31_536_000.0,
    )
    max_history: int = _doc("History entries kept per case (oldest dropped).", 200)
    max_notes: int = _doc("Notes kept per case (oldest dropped).", 100)
    max_escalations: int = _doc("Escalation summaries kept per case (oldest dropped).", 100)
    max_sanction_seconds: float = _doc("Longest timed mute or ban, in seconds.", 31_536_000.0)
    counts_interval: float = _doc(
        "Seconds between refreshes of the queue-depth gauge (chatguard_case_queue_depth).", 15.0
    )
    reporting_service: str = _doc(
        "Name of the reporting service in law-enforcement reports; empty = instance_id.", ""
    )
    webhook: CaseWebhookConfig = _doc(
        "Webhook for new cases (see docs/cases.md).", factory=CaseWebhookConfig
    )


@dataclass(frozen=True, slots=True)
class EvidenceConfig:
    enabled: bool = _doc(
        "Keep captures in the tamper-evident evidence log under data_dir/evidence "
        "(off: captures are only counted and kept briefly in memory).",
        False,
    )
    fsync: Literal["always", "batch"] = _doc(
        "When a record is durable: fsync per record, or one fsync per group of records "
        "(at most batch_delay seconds / batch_max records later). Nothing is "
        "acknowledged before its fsync.",
        "batch",
    )
    batch_delay: float = _doc("Longest wait to gather a group commit (fsync: batch).", 0.01)
    batch_max: int = _doc("Most records in one group commit.", 256)
    segment_bytes: int = _doc(
        "Size at which a segment file is closed and a new one begun.", 67_108_864
    )
    queue_size: int = _doc(
        "Captures waiting to be written; when full, a capture waits queue_wait seconds, "
        "then is dropped and counted (chatguard_evidence_dropped_total).",
        10_000,
    )
    queue_wait: float = _doc(
        "Longest a capture waits for room in a full queue (it delays that one message).", 0.05
    )
    context_before: int = _doc(
        "Most messages before a captured one kept in its record (a capture action's "
        "`before` may ask for fewer).",
        50,
    )
    context_after: int = _doc(
        "Most messages after a capture written as its follow-up context record "
        "(a capture action's `after` may ask for fewer).",
        20,
    )
    context_wait: float = _doc(
        "Seconds a capture waits for its `after` messages before the context record is "
        "written with what came.",
        300.0,
    )
    context_conversations: int = _doc(
        "Conversations whose recent messages are kept for context (least recent forgotten).",
        10_000,
    )
    context_followups: int = _doc(
        "Captures waiting for their `after` messages at once (one more completes the oldest).",
        1_000,
    )
    context_max_bytes: int = _doc(
        "Memory for all context windows together (frames and text); beyond it the least "
        "recently active conversations are forgotten.",
        67_108_864,
    )
    checkpoint_interval: float = _doc(
        "Seconds between signed checkpoints (written only when the log grew); 0 = on demand only.",
        300.0,
    )
    captured_days: float = _doc(
        "Days a capture that was neither escalated nor reported is kept before its payload "
        "is purged.",
        30.0,
    )
    escalated_days: float = _doc(
        "Days an escalated or reported capture is kept after its latest escalation or "
        "report (one year: 18 U.S.C. 2258A(h)).",
        365.0,
    )
    purge_interval: float = _doc("Seconds between retention purge runs; 0 = CLI only.", 3600.0)
    encryption_key_file: str = _doc(
        "File with a 32-byte AES-256-GCM key (raw, hex or base64) to encrypt payloads at "
        "rest; empty = not encrypted.",
        "",
    )


@dataclass(frozen=True, slots=True)
class XmppConfig:
    service_jid: str = _doc(
        "JID ChatGuard speaks as: banners come from it; messages to it (send, cancel, "
        "report <reason>) are commands and never reach the server.",
        "chatguard",
    )
    max_stanza_bytes: int = _doc(
        "Largest stanza (UTF-8 bytes) ChatGuard parses; a larger one is bad input.", 262_144
    )
    max_depth: int = _doc("Deepest element nesting in a stanza; deeper is bad input.", 32)
    on_bad_stanza: Literal["refuse", "pass"] = _doc(
        "Bad input (too large, too deep, DTD or entities, malformed): refuse it (dropped, the "
        "client told) or pass it on unread. Counted either way.",
        "refuse",
    )


@dataclass(frozen=True, slots=True)
class IrcUpstreamConfig:
    host: str = _doc("Host of the IRC server ChatGuard fronts (TCP).", "127.0.0.1")
    port: int = _doc("Port of the IRC server.", 6667)
    tls: bool = _doc("Connect to the IRC server over TLS.", False)
    tls_verify: bool = _doc("Verify the IRC server's TLS certificate.", True)
    tls_ca_file: str = _doc(
        "PEM file of the CAs to trust for the IRC server's certificate; empty = system CAs.", ""
    )
    tls_server_name: str = _doc(
        "Name to check the server's certificate against (SNI); empty = host.", ""
    )


@dataclass(frozen=True, slots=True)
class IrcListenConfig:
    enabled: bool = _doc("Accept IRC clients over TCP (codec.type irc).", True)
    host: str = _doc("Address the IRC listener binds.", "127.0.0.1")
    port: int = _doc("Port of the IRC listener; 0 picks a free port.", 6667)
    tls_cert: str = _doc("PEM certificate (chain) for TLS toward clients; empty = plain TCP.", "")
    tls_key: str = _doc("PEM private key of tls_cert.", "")
    proxy_protocol: bool = _doc(
        "Expect a PROXY protocol v1 header from a trusted load balancer and take the "
        "client address from it (evidence, logs).",
        False,
    )


@dataclass(frozen=True, slots=True)
class IrcConfig:
    service_name: str = _doc(
        "Nick ChatGuard speaks as: banners come from it, `/msg <name> send` talks to it.",
        "ChatGuard",
    )
    service_host: str = _doc(
        "Host part of the service's prefix on its notices.", "chatguard.invalid"
    )
    upstream: IrcUpstreamConfig = _doc("The IRC server (TCP).", factory=IrcUpstreamConfig)
    listen: IrcListenConfig = _doc("The TCP listener for IRC clients.", factory=IrcListenConfig)
    max_line_bytes: int = _doc(
        "Longest IRC line, CR LF included, tags not counted (RFC 1459: 512).", 512
    )
    max_tag_bytes: int = _doc("Longest tags part of a line (IRCv3: 8191).", 8191)
    on_long_line: Literal["refuse", "pass"] = _doc(
        "A line over max_line_bytes or max_tag_bytes: refuse (drop, tell the client) or pass.",
        "refuse",
    )
    on_bad_byte: Literal["refuse", "pass"] = _doc(
        "A line with NUL or a bare CR inside: refuse (drop, tell the client) or pass.", "refuse"
    )
    hard_line_bytes: int = _doc(
        "Most bytes of one line ever buffered; longer lines are always refused.", 65_536
    )


@dataclass(frozen=True, slots=True)
class Config:
    listen: ListenConfig = _doc("Client-facing listener.", factory=ListenConfig)
    upstream: UpstreamConfig = _doc("The chat service behind ChatGuard.", factory=UpstreamConfig)
    admin: AdminConfig = _doc("Health and metrics listener.", factory=AdminConfig)
    limits: LimitsConfig = _doc(
        "Bounds on frames, buffers, connections and time.", factory=LimitsConfig
    )
    codec: CodecConfig = _doc("How frames map to chat events.", factory=CodecConfig)
    identity: IdentityConfig = _doc(
        "Where a connection's identity comes from.", factory=IdentityConfig
    )
    store: StoreConfig = _doc("Shared state.", factory=StoreConfig)
    policy: PolicyConfig = _doc("The policy pack and how it is run.", factory=PolicyConfig)
    banners: BannersConfig = _doc("The banner catalogue.", factory=BannersConfig)
    holds: HoldsConfig = _doc("Held messages (are-you-sure prompts).", factory=HoldsConfig)
    reports: ReportsConfig = _doc("In-chat reports (/report).", factory=ReportsConfig)
    irc: IrcConfig = _doc("IRC: the server, the TCP listener, line limits.", factory=IrcConfig)
    data_dir: str = _doc("Directory for durable data (evidence, keys).", "./data")
    instance_id: str = _doc(
        "Name of this sidecar instance in metrics and evidence; empty = hostname.", ""
    )
    log_level: Literal["debug", "info", "warning", "error"] = _doc("Log verbosity.", "info")
    console: ConsoleConfig = _doc(
        "Moderator console and JSON API accounts and sign-in.", factory=ConsoleConfig
    )
    cases: CasesConfig = _doc(
        "Cases, the moderator queue, sanctions and case webhooks.", factory=CasesConfig
    )
    evidence: EvidenceConfig = _doc("The tamper-evident evidence log.", factory=EvidenceConfig)
    xmpp: XmppConfig = _doc(
        "XMPP over WebSocket (codec.type xmpp): service JID and stanza limits.",
        factory=XmppConfig,
    )


# -- loading ---------------------------------------------------------------


def load(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or only defaults when None), then apply environment overrides."""
    source = str(path) if path is not None else "<defaults>"
    raw: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, "<file>", f"cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(source, "<file>", f"not UTF-8 text: {exc.reason}") from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(source, "<file>", f"not valid YAML: {exc}") from exc
        if raw is None:
            raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, "<file>", "the top level must be a mapping")
    merged, from_env = _apply_env(raw, os.environ if env is None else env)
    try:
        config: Config = _build(Config, merged, "", source)
        _check(config, source)
    except ConfigError as exc:
        # A bad value that came from the environment is the variable's fault,
        # not the file's: say so.
        variable = next((v for k, v in from_env.items() if exc.key.startswith(k)), None)
        if variable is None:
            raise
        raise ConfigError(f"environment {variable}", exc.key, exc.reason) from exc
    return config


def from_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> Config:
    """Build a Config from an already-parsed mapping (used by the demo and tests)."""
    config: Config = _build(Config, dict(data), "", source)
    _check(config, source)
    return config


def _apply_env(
    raw: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's data with overrides applied, and which dotted key came from which variable."""
    merged = dict(raw)
    from_env: dict[str, str] = {}
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        try:
            node[path[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment {name}", ".".join(path), f"bad value: {exc}") from exc
        from_env[".".join(path)] = name
    return merged, from_env


def _build(cls: type[Any], data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(source, prefix.rstrip(".") or "<top>", "expected a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where = f"{prefix}{key}"
            raise ConfigError(source, where, f"unknown key (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name in known:
        if name in data:
            values[name] = _coerce(hints[name], data[name], f"{prefix}{name}", source)
    return cls(**values)


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key + ".", source)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(source, key, f"must be one of {', '.join(map(str, allowed))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, key, "must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, key, "must be an integer")
        if value < 0:
            raise ConfigError(source, key, "must not be negative")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, key, "must be a number")
        if not math.isfinite(value):
            raise ConfigError(source, key, "must be a finite number")
        if value < 0:
            raise ConfigError(source, key, "must not be negative")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(source, key, "must be a string")
        return value
    if origin is tuple and any(dataclasses.is_dataclass(a) for a in typing.get_args(tp)):
        # A list of sections, e.g. console.moderators: each item is checked like a section.
        item_type = typing.get_args(tp)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(source, key, "must be a list")
        return tuple(_build(item_type, v, f"{key}[{i}].", source) for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(source, key, "must be a list of strings")
        return tuple(value)
    if origin in (Mapping, dict) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(source, key, "must be a mapping of strings to strings")
        return types.MappingProxyType(dict(value))
    raise ConfigError(source, key, f"unsupported type {tp!r}")  # pragma: no cover


def _check(config: Config, source: str) -> None:
    """Cross-field checks that types alone cannot express."""
    url = urlsplit(config.upstream.url)
    if url.scheme not in ("ws", "wss") or not url.hostname:
        raise ConfigError(source, "upstream.url", "must be a ws:// or wss:// URL with a host")
    for key, port in (("listen.port", config.listen.port), ("admin.port", config.admin.port)):
        if port > 65535:
            raise ConfigError(source, key, "must be a port number (0-65535)")
    if config.limits.max_frame_bytes < 1024:
        raise ConfigError(source, "limits.max_frame_bytes", "must be at least 1024")
    if config.limits.max_connections < 1:
        raise ConfigError(source, "limits.max_connections", "must be at least 1")
    jwt = config.identity.jwt
    if jwt.enabled and not (jwt.key or jwt.key_file):
        raise ConfigError(
            source, "identity.jwt.key", "jwt is enabled but no key or key_file is set"
        )
    if config.holds.per_session < 1:
        raise ConfigError(source, "holds.per_session", "must be at least 1")
    jid = config.xmpp.service_jid
    if not jid or "/" in jid or any(c.isspace() or c in "<>&'\"" for c in jid):
        raise ConfigError(source, "xmpp.service_jid", "must be a bare JID (no resource, no spaces)")
    if config.xmpp.max_depth < 2:
        raise ConfigError(source, "xmpp.max_depth", "must be at least 2 (a stanza and its body)")
    if config.xmpp.max_stanza_bytes < 1024:
        raise ConfigError(source, "xmpp.max_stanza_bytes", "must be at least 1024")
    if config.policy.watch_interval <= 0:
        raise ConfigError(source, "policy.watch_interval", "must be positive")
    irc = config.irc
    if bool(irc.listen.tls_cert) != bool(irc.listen.tls_key):
        raise ConfigError(source, "irc.listen.tls_key", "set both tls_cert and tls_key, or neither")
    for key, port in (
        ("irc.listen.port", irc.listen.port),
        ("irc.upstream.port", irc.upstream.port),
    ):
        if port > 65535:
            raise ConfigError(source, key, "must be a port number (0-65535)")
    if irc.max_line_bytes < 64:
        raise ConfigError(source, "irc.max_line_bytes", "must be at least 64")
    if irc.hard_line_bytes < irc.max_line_bytes + irc.max_tag_bytes:
        raise ConfigError(
            source, "irc.hard_line_bytes", "must be at least max_line_bytes + max_tag_bytes"
        )
    if not irc.service_name or any(c in irc.service_name for c in " ,:!@#\r\n\0"):
        raise ConfigError(source, "irc.service_name", "must be a valid IRC nick")
    if jwt.key and jwt.key_file:
        raise ConfigError(source, "identity.jwt.key_file", "set key or key_file, not both")
    _check_console(config.console, source)
    _check_cases(config.cases, source)
    b = config.banners
    for key in ("history_per_user", "history_open_limit", "history_queue"):
        if getattr(b, key) < 1:
            raise ConfigError(source, f"banners.{key}", "must be at least 1")
    if b.history_ttl <= 0:
        raise ConfigError(source, "banners.history_ttl", "must be positive")
    ev = config.evidence
    for key, value in (("queue_size", ev.queue_size), ("batch_max", ev.batch_max)):
        if value < 1:
            raise ConfigError(source, f"evidence.{key}", "must be at least 1")
    if ev.segment_bytes < 4096:
        raise ConfigError(source, "evidence.segment_bytes", "must be at least 4096")


def _check_console(console: ConsoleConfig, source: str) -> None:
    seen: set[str] = set()
    for i, account in enumerate(console.moderators):
        key = f"console.moderators[{i}]"
        if not account.id:
            raise ConfigError(source, f"{key}.id", "every moderator needs an id")
        if account.id in seen:
            raise ConfigError(source, f"{key}.id", f"duplicate moderator id {account.id!r}")
        seen.add(account.id)
        if account.password_hash and not account.password_hash.startswith("$argon2"):
            raise ConfigError(source, f"{key}.password_hash", "must be an argon2 hash")
        if account.token_hash and not account.token_hash.startswith("sha256:"):
            raise ConfigError(source, f"{key}.token_hash", "must be a sha256: token hash")
    if console.max_sessions < 1:
        raise ConfigError(source, "console.max_sessions", "must be at least 1")
    if console.sso.header and not console.sso.trusted_proxies:
        raise ConfigError(
            source, "console.sso.trusted_proxies", "an SSO header needs trusted proxy addresses"
        )
    for address in console.sso.trusted_proxies:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ConfigError(
                source, "console.sso.trusted_proxies", f"{address!r} is not an address or network"
            ) from None


def _check_cases(cases: CasesConfig, source: str) -> None:
    if cases.lease <= 0:
        raise ConfigError(source, "cases.lease", "must be positive")
    for name in ("low", "medium", "high", "critical"):
        if getattr(cases.sla, name) <= 0:
            raise ConfigError(source, f"cases.sla.{name}", "must be positive")
    for name in ("max_open", "max_done", "max_history", "max_notes", "max_escalations"):
        if getattr(cases, name) < 1:
            raise ConfigError(source, f"cases.{name}", "must be at least 1")
    hook = cases.webhook
    if hook.url:
        scheme = urlsplit(hook.url).scheme
        if scheme not in ("http", "https") or not urlsplit(hook.url).hostname:
            raise ConfigError(source, "cases.webhook.url", "must be an http:// or https:// URL")
        if not (hook.secret or hook.secret_file):
            raise ConfigError(source, "cases.webhook.secret", "a webhook needs a secret")
    if hook.secret and hook.secret_file:
        raise ConfigError(
            source, "cases.webhook.secret_file", "set secret or secret_file, not both"
        )
    if hook.max_attempts < 1 or hook.max_queue < 1 or hook.log_size < 1:
        raise ConfigError(source, "cases.webhook", "max_attempts, max_queue, log_size must be >= 1")


# -- documentation ---------------------------------------------------------


def iter_keys(cls: type[Any] = Config, prefix: str = "") -> typing.Iterator[tuple[str, Any, str]]:
    """Every leaf key as (dotted name, default, doc), for docs and their test."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from iter_keys(typing.cast(type[Any], tp), f"{prefix}{f.name}.")
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        else:
            default = typing.cast(Callable[[], Any], f.default_factory)()
        yield f"{prefix}{f.name}", default, f.metadata.get("doc", "")
