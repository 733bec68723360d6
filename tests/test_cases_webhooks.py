"""Case webhooks against a real aiohttp receiver on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from chatguard.cases import workflow
from chatguard.cases.model import DEFAULT_SLA, Case, EscalationSummary
from chatguard.cases.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CaseWebhooks,
    sign,
    verify,
)
from chatguard.metrics import Metrics
from chatguard.steps.handoff import EscalationRequest
from tests.support.relay import GuardFactory
from tests.support.timing import eventually, unit

SECRET = b"s3cret"


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver("")

    async def hook(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers), await request.read()))
        status = state.statuses.pop(0) if state.statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/hook"
    yield state
    await runner.cleanup()


def a_case(severity: str = "high") -> Case:
    s = EscalationSummary(
        at=1.0,
        source="detection",
        reporter=None,
        sender="bob",
        severity=severity,
        category="grooming",
        risk=9.0,
        signals=("secrecy",),
        reason="grooming risk 8",
    )
    return workflow.open_case(
        "case-7", "dm:amy:bob", s, ["bob", "amy"], ["rec-1"], now=time.time(), sla=DEFAULT_SLA
    )


@contextlib.asynccontextmanager
async def running(hooks: CaseWebhooks) -> AsyncIterator[None]:
    task = asyncio.create_task(hooks.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make(receiver: Receiver, **kwargs: Any) -> tuple[CaseWebhooks, list[float]]:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:  # the clock is the one thing we patch
        waits.append(seconds)

    hooks = CaseWebhooks(receiver.url, SECRET, Metrics(), sleep=no_wait, **kwargs)
    return hooks, waits


async def test_a_new_case_is_posted_signed_and_without_content(receiver: Receiver) -> None:
    hooks, _ = make(receiver)
    async with running(hooks):
        assert hooks.offer(a_case("high"))
        assert not hooks.offer(a_case("medium"))  # below min_severity
        await eventually(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    timestamp = headers[TIMESTAMP_HEADER]
    assert headers[SIGNATURE_HEADER] == sign(SECRET, timestamp, body)
    assert verify(SECRET, timestamp, body, headers[SIGNATURE_HEADER], now=time.time())
    assert not verify(b"other", timestamp, body, headers[SIGNATURE_HEADER], now=time.time())
    assert not verify(SECRET, timestamp, body + b" ", headers[SIGNATURE_HEADER], now=time.time())
    assert not verify(SECRET, timestamp, body, headers[SIGNATURE_HEADER], now=time.time() + 3600)
    summary = json.loads(body)
    assert summary["event"] == "case.opened"
    assert summary["case"]["id"] == "case-7"
    assert summary["case"]["severity"] == "high"
    assert "escalations" not in summary["case"]
    assert "grooming risk" not in body.decode()
    assert [a.outcome for a in hooks.log] == ["delivered"]


async def test_content_is_sent_only_when_configured(receiver: Receiver) -> None:
    hooks, _ = make(receiver, include_content=True)
    async with running(hooks):
        hooks.offer(a_case())
        await eventually(lambda: len(receiver.received) == 1)
    case = json.loads(receiver.received[0][1])["case"]
    assert case["escalations"][0]["reason"] == "grooming risk 8"
    assert case["escalations"][0]["signals"] == ["secrecy"]


async def test_failures_are_retried_with_exponential_backoff(receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 500]
    hooks, waits = make(receiver, backoff=1.0, backoff_max=3.0)
    async with running(hooks):
        hooks.offer(a_case())
        await eventually(lambda: len(hooks.log) == 4)
    assert [a.outcome for a in hooks.log] == ["retry", "retry", "retry", "delivered"]
    assert [a.status for a in hooks.log] == [500, 503, 500, 200]
    assert waits == [1.0, 2.0, 3.0]  # doubling, capped at backoff_max
    deliveries = [h["X-ChatGuard-Delivery"] for h, _ in receiver.received]
    assert deliveries == ["case-7/1", "case-7/2", "case-7/3", "case-7/4"]
    assert hooks.metrics.webhook_deliveries.labels(outcome="retry")._value.get() == 3


async def test_delivery_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.statuses = [500] * 10
    hooks, waits = make(receiver, max_attempts=3)
    async with running(hooks):
        hooks.offer(a_case())
        await eventually(lambda: any(a.outcome == "failed" for a in hooks.log))
    assert len(receiver.received) == 3
    assert [a.outcome for a in hooks.log] == ["retry", "retry", "failed"]
    assert len(waits) == 2
    assert hooks.metrics.webhook_deliveries.labels(outcome="failed")._value.get() == 1


async def test_an_unreachable_receiver_is_a_failed_attempt(receiver: Receiver) -> None:
    hooks, _ = make(receiver, max_attempts=2)
    hooks.url = receiver.url.replace("/hook", "/nowhere")  # 404
    async with running(hooks):
        hooks.offer(a_case())
        await eventually(lambda: len(hooks.log) == 2)
    assert [(a.outcome, a.status) for a in hooks.log] == [("retry", 404), ("failed", 404)]


async def test_the_queue_and_the_log_are_bounded(receiver: Receiver) -> None:
    hooks, _ = make(receiver, max_queue=1, log_size=2)
    assert hooks.offer(a_case())
    assert not hooks.offer(a_case())  # not running: the queue is full
    assert not hooks.offer(a_case())
    assert [a.outcome for a in hooks.log] == ["dropped", "dropped"]
    assert hooks.metrics.webhook_deliveries.labels(outcome="dropped")._value.get() == 2
    async with running(hooks):
        await eventually(lambda: len(receiver.received) == 1)
    assert len(hooks.log) == 2


def test_a_webhook_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        CaseWebhooks("http://127.0.0.1:1/", b"", Metrics())


async def test_the_app_posts_new_cases_from_its_book(
    receiver: Receiver, chat_service, make_guard: GuardFactory, tmp_path
) -> None:
    secret_file = tmp_path / "hook-secret"
    secret_file.write_text("file-secret\n")
    guard = await make_guard(
        chat_service.url,
        cases={
            "webhook": {
                "url": receiver.url,
                "secret_file": str(secret_file),
                "min_severity": "critical",
            }
        },
    )
    request = EscalationRequest(
        at=time.time(),
        conversation="dm:amy:bob",
        session_id="s",
        sender="bob",
        recipients=("amy",),
        severity="critical",
        category="sextortion",
        risk=20.0,
        signals=("sextortion",),
        reason="threat",
    )
    await guard.cases.escalate(request)
    await guard.cases.escalate(request)  # joins the case: no second webhook
    await eventually(lambda: len(receiver.received) == 1, within=5)
    headers, body = receiver.received[0]
    assert verify(
        b"file-secret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=time.time()
    )
    await asyncio.sleep(unit(0.2))
    assert len(receiver.received) == 1
