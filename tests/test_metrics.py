"""Metrics: names, labels, one registry per instance, and the text exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatguard.metrics import CONTENT_TYPE_LATEST, Metrics

# (attribute, exposed family name, type, label names)
FAMILIES = [
    ("connections_open", "chatguard_connections_open", "gauge", ()),
    ("connections_total", "chatguard_connections", "counter", ()),
    ("connections_refused", "chatguard_connections_refused", "counter", ("reason",)),
    ("frames", "chatguard_frames", "counter", ("origin",)),
    ("bytes", "chatguard_bytes", "counter", ("origin",)),
    ("events", "chatguard_chat_events", "counter", ("kind", "origin")),
    ("verdicts", "chatguard_verdicts", "counter", ("effect",)),
    ("pipeline_seconds", "chatguard_pipeline_seconds", "histogram", ()),
    ("pipeline_errors", "chatguard_pipeline_errors", "counter", ("step",)),
    ("upstream_connect_failures", "chatguard_upstream_connect_failures", "counter", ("reason",)),
    ("closes", "chatguard_session_closes", "counter", ("cause",)),
    ("http_requests", "chatguard_http_requests", "counter", ("status",)),
    ("deliveries", "chatguard_deliveries", "counter", ("outcome",)),
    ("policy_reloads", "chatguard_policy_reloads", "counter", ("outcome",)),
    ("signals", "chatguard_policy_signals", "counter", ("signal",)),
    ("actions", "chatguard_policy_actions", "counter", ("type", "mode")),
    ("holds", "chatguard_holds", "counter", ("outcome",)),
    ("handoffs", "chatguard_handoffs", "counter", ("kind", "outcome")),
    ("bad_lines", "chatguard_irc_bad_lines", "counter", ("origin", "problem", "action")),
    # banners (speed bumps)
    (
        "banner_impressions",
        "chatguard_banner_impressions",
        "counter",
        ("banner", "variant", "audience", "trigger"),
    ),
    ("banner_outcomes", "chatguard_banner_outcomes", "counter", ("banner", "variant", "outcome")),
    ("banners_suppressed", "chatguard_banners_suppressed", "counter", ("reason",)),
    ("banner_log_errors", "chatguard_banner_log_errors", "counter", ()),
    ("reports", "chatguard_reports", "counter", ("outcome",)),
    ("cases_opened", "chatguard_cases_opened", "counter", ("severity",)),
    ("cases_refused", "chatguard_cases_refused", "counter", ()),
    ("case_queue_depth", "chatguard_case_queue_depth", "gauge", ("severity",)),
    ("case_time_to_claim", "chatguard_case_time_to_claim_seconds", "histogram", ()),
    ("case_time_to_action", "chatguard_case_time_to_action_seconds", "histogram", ()),
    ("case_actions", "chatguard_case_actions", "counter", ("type",)),
    ("sanctions_enforced", "chatguard_sanctions_enforced", "counter", ("kind",)),
    ("webhook_deliveries", "chatguard_webhook_deliveries", "counter", ("outcome",)),
    ("evidence_records", "chatguard_evidence_records", "counter", ("kind",)),
    ("evidence_queue_full", "chatguard_evidence_queue_full", "counter", ()),
    ("evidence_dropped", "chatguard_evidence_dropped", "counter", ("kind",)),
    ("evidence_queue_depth", "chatguard_evidence_queue_depth", "gauge", ()),
    ("evidence_write_errors", "chatguard_evidence_write_errors", "counter", ()),
    ("evidence_purged", "chatguard_evidence_purged", "counter", ()),
    ("bad_frames", "chatguard_bad_frames", "counter", ("origin", "reason", "action")),
    ("console_sign_ins", "chatguard_console_sign_ins", "counter", ("outcome",)),
    ("banner_history_errors", "chatguard_banner_history_errors", "counter", ("reason",)),
]


def families(metrics: Metrics) -> dict[str, tuple[str, str]]:
    text = metrics.render().decode()
    return {f.name: (f.type, f.documentation) for f in text_string_to_metric_families(text)}


@pytest.mark.parametrize(("attr", "name", "kind", "labels"), FAMILIES)
def test_every_metric_is_named_typed_and_documented(
    attr: str, name: str, kind: str, labels: tuple[str, ...]
) -> None:
    metrics = Metrics()
    metric = getattr(metrics, attr)
    if labels:
        metric.labels(**dict.fromkeys(labels, "x")).inc()
        exposed = f"{name}_total" if kind == "counter" else name
        sample = metrics.registry.get_sample_value(exposed, dict.fromkeys(labels, "x"))
        assert sample == 1.0
        with pytest.raises(ValueError, match="label"):
            metric.labels(**dict.fromkeys((*labels, "user"), "x"))
    else:
        with pytest.raises(ValueError, match="label"):
            metric.labels("x")
    found = families(metrics)
    assert name in found
    assert found[name][0] == kind
    assert found[name][1].endswith(".")


def test_no_metric_is_left_out_of_the_table() -> None:
    # prometheus_client adds a ``_created`` timestamp beside counters and histograms.
    exposed = {name for name in families(Metrics()) if not name.endswith("_created")}
    labelled = {name for _, name, _, labels in FAMILIES if labels}
    unlabelled = {name for _, name, _, labels in FAMILIES if not labels}
    # Labelled families without any child are still described.
    assert unlabelled <= exposed
    assert exposed <= unlabelled | labelled
    assert all(name.startswith("chatguard_") for name in exposed)


def test_counters_are_exposed_with_total() -> None:
    metrics = Metrics()
    metrics.connections_total.inc()
    metrics.frames.labels(origin="client").inc(3)
    metrics.events.labels(kind="message", origin="upstream").inc()
    sample = metrics.registry.get_sample_value
    assert sample("chatguard_connections_total") == 1.0
    assert sample("chatguard_frames_total", {"origin": "client"}) == 3.0
    assert sample("chatguard_frames_total", {"origin": "upstream"}) is None
    assert sample("chatguard_chat_events_total", {"kind": "message", "origin": "upstream"}) == 1.0


def test_gauge_goes_up_and_down() -> None:
    metrics = Metrics()
    metrics.connections_open.inc()
    metrics.connections_open.inc()
    metrics.connections_open.dec()
    assert metrics.registry.get_sample_value("chatguard_connections_open") == 1.0


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0.000_004, "5e-06"), (0.000_03, "5e-05"), (0.003, "0.005"), (0.09, "0.1"), (2.0, "+Inf")],
)
def test_pipeline_buckets_reach_from_microseconds_to_the_slow_path(
    seconds: float, bucket: str
) -> None:
    metrics = Metrics()
    metrics.pipeline_seconds.observe(seconds)
    sample = metrics.registry.get_sample_value
    assert sample("chatguard_pipeline_seconds_bucket", {"le": bucket}) == 1.0
    assert sample("chatguard_pipeline_seconds_count") == 1.0


def test_instances_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.pipeline_errors.labels(step="policy").inc()
    assert a.registry is not b.registry
    assert a.registry.get_sample_value("chatguard_pipeline_errors_total", {"step": "policy"}) == 1
    assert (
        b.registry.get_sample_value("chatguard_pipeline_errors_total", {"step": "policy"}) is None
    )


def test_render_is_prometheus_text() -> None:
    metrics = Metrics()
    metrics.closes.labels(cause="idle").inc()
    text = metrics.render().decode()
    assert "# TYPE chatguard_session_closes" in text
    assert "# HELP chatguard_session_closes" in text
    assert 'chatguard_session_closes_total{cause="idle"} 1.0' in text
    assert CONTENT_TYPE_LATEST.startswith("text/plain")


def test_every_metric_is_in_the_operator_docs() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "deployment.md").read_text(encoding="utf-8")
    for _, name, kind, _ in FAMILIES:
        shown = name if kind != "counter" else f"{name}_total"
        assert f"`{shown}" in doc, f"{shown} is not described in docs/deployment.md"
