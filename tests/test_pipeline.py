"""The pipeline: the order of steps, how verdicts combine, failing steps,
and the control step that consumes ChatGuard's own frames.

Steps here are small recording doubles that implement the ``Step``
protocol; the pipeline, the control step and the metrics are the real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from chatguard.codecs.base import SERVICE_COMMAND
from chatguard.events import (
    PASS,
    ChatEvent,
    EventKind,
    Inject,
    Notice,
    Severity,
    Side,
    Verdict,
)
from chatguard.metrics import Metrics
from chatguard.pipeline import (
    ORDER,
    ControlStep,
    Findings,
    Pipeline,
    SessionContext,
    Step,
    error_notice,
)

Seen = list[tuple[str, Any]]


class Recorder:
    """A step that notes what it saw and answers with a fixed verdict."""

    def __init__(self, name: str, seen: Seen, verdict: Verdict = PASS) -> None:
        self.name = name
        self.seen = seen
        self.verdict = verdict

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        self.seen.append((self.name, event.raw))
        return self.verdict


class Broken:
    """A step with a bug in it."""

    def __init__(self, seen: Seen, name: str = "broken") -> None:
        self.seen = seen
        self.name = name

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        self.seen.append((self.name, event.raw))
        raise RuntimeError("a policy bug")


def message(raw: str = '{"type":"message","room":"r","text":"hi"}') -> ChatEvent:
    return ChatEvent(EventKind.MESSAGE, Side.CLIENT, raw, sender="alice", room="r", text="hi")


def control(obj: dict[str, Any]) -> ChatEvent:
    return ChatEvent(EventKind.CONTROL, Side.CLIENT, "{}", sender="alice", control=obj)


@pytest.fixture
def session() -> SessionContext:
    return SessionContext(session_id="s-1", peer="192.0.2.7", connected_at=1_700_000_000.0)


def banner(text: str) -> Inject:
    return Inject(Side.CLIENT, Notice("banner", text, banner_id=text))


# -- order -------------------------------------------------------------------


def test_the_order_is_written_down_once() -> None:
    assert ORDER == ("control", "sanctions", "policy", "banners", "evidence", "escalate")


@pytest.mark.parametrize(
    "registration",
    [
        list(ORDER),
        list(reversed(ORDER)),
        ["policy", "escalate", "control", "evidence", "sanctions", "banners"],
        ["banners", "policy"],
        ["escalate", "sanctions"],
    ],
)
async def test_steps_run_in_order_whatever_order_they_are_registered_in(
    session: SessionContext, registration: list[str]
) -> None:
    seen: Seen = []
    pipeline = Pipeline({name: Recorder(name, seen) for name in registration})
    expected = [name for name in ORDER if name in registration]
    assert [name for name, _ in pipeline.steps] == expected
    assert await pipeline.run(message(), session) is PASS
    assert [name for name, _ in seen] == expected


@pytest.mark.parametrize("names", [["spam"], ["policy", "Policy"], ["control", "moderation", "x"]])
def test_unknown_step_names_are_refused(names: list[str]) -> None:
    steps: dict[str, Step] = {name: Recorder(name, []) for name in names}
    with pytest.raises(ValueError, match="unknown pipeline steps") as info:
        Pipeline(steps)
    for name in names:
        if name not in ORDER:
            assert name in str(info.value)


async def test_no_steps_passes_everything(session: SessionContext) -> None:
    assert await Pipeline({}).run(message(), session) is PASS


async def test_steps_receive_the_session(session: SessionContext) -> None:
    got: list[SessionContext] = []
    expected = session

    async def step(event: ChatEvent, session: SessionContext, findings: Findings) -> Verdict:
        got.append(session)
        return PASS

    await Pipeline({"policy": step}).run(message(), expected)
    assert got == [expected]


async def test_findings_pass_from_step_to_step_and_not_between_events(
    session: SessionContext,
) -> None:
    seen: list[Any] = []

    async def policy(event: ChatEvent, session: SessionContext, findings: Findings) -> Verdict:
        assert findings.assessment is None
        findings.assessment = event.raw
        return PASS

    async def banners(event: ChatEvent, session: SessionContext, findings: Findings) -> Verdict:
        seen.append(findings.assessment)
        return PASS

    pipeline = Pipeline({"banners": banners, "policy": policy})
    await pipeline.run(message("one"), session)
    await pipeline.run(message("two"), session)
    assert seen == [message("one").raw, message("two").raw]


# -- combining verdicts -------------------------------------------------------

A, B, C, D = banner("a"), banner("b"), Inject(Side.UPSTREAM, "frame-c"), banner("d")

# (verdict of each step by name, expected combined verdict, steps that ran)
COMBINATIONS: list[tuple[str, dict[str, Verdict], Verdict, list[str]]] = [
    (
        "injections accumulate in step order",
        {
            "banners": Verdict(inject=(C,), reason="banner"),
            "sanctions": Verdict(inject=(A, B)),
            "escalate": Verdict(inject=(D,)),
        },
        Verdict(inject=(A, B, C, D), reason="banner"),
        ["sanctions", "policy", "banners", "evidence", "escalate"],
    ),
    (
        "first drop stops the chain and keeps what came before",
        {
            "sanctions": Verdict(inject=(A,), reason="first"),
            "policy": Verdict(forward=False, inject=(B,), reason="blocked"),
            "banners": Verdict(inject=(C,)),
            "evidence": Verdict(forward=False, reason="never seen"),
        },
        Verdict(forward=False, inject=(A, B), reason="blocked"),
        ["sanctions", "policy"],
    ),
    (
        "the latest reason wins, an empty one keeps the earlier",
        {
            "sanctions": Verdict(inject=(A,), reason="muted-check"),
            "policy": Verdict(inject=(B,)),
        },
        Verdict(inject=(A, B), reason="muted-check"),
        ["sanctions", "policy", "banners", "evidence", "escalate"],
    ),
    (
        "a later replacement overrides an earlier one",
        {
            "policy": Verdict(replacement="one"),
            "banners": Verdict(inject=(A,)),
            "evidence": Verdict(replacement="two"),
        },
        Verdict(replacement="two", inject=(A,)),
        ["sanctions", "policy", "banners", "evidence", "escalate"],
    ),
    (
        "a drop after a replacement still drops",
        {
            "policy": Verdict(replacement="redacted"),
            "banners": Verdict(forward=False, inject=(A,), reason="hold"),
        },
        Verdict(forward=False, replacement="redacted", inject=(A,), reason="hold"),
        ["sanctions", "policy", "banners"],
    ),
]


@pytest.mark.parametrize(
    ("verdicts", "expected", "ran"),
    [pytest.param(v, e, r, id=name) for name, v, e, r in COMBINATIONS],
)
async def test_verdicts_combine(
    session: SessionContext, verdicts: dict[str, Verdict], expected: Verdict, ran: list[str]
) -> None:
    seen: Seen = []
    names = ["sanctions", "policy", "banners", "evidence", "escalate"]
    pipeline = Pipeline({n: Recorder(n, seen, verdicts.get(n, PASS)) for n in names})
    assert await pipeline.run(message(), session) == expected
    assert [name for name, _ in seen] == ran


async def test_later_steps_see_the_replacement_as_the_frame(session: SessionContext) -> None:
    seen: Seen = []
    original = message('{"type":"message","room":"r","text":"call 555 0100"}')
    pipeline = Pipeline(
        {
            "sanctions": Recorder("sanctions", seen),
            "policy": Recorder("policy", seen, Verdict(replacement='{"text":"call [redacted]"}')),
            "banners": Recorder("banners", seen),
            "evidence": Recorder("evidence", seen, Verdict(replacement=b"binary")),
            "escalate": Recorder("escalate", seen),
        }
    )
    result = await pipeline.run(original, session)
    assert seen == [
        ("sanctions", original.raw),
        ("policy", original.raw),
        ("banners", '{"text":"call [redacted]"}'),
        ("evidence", '{"text":"call [redacted]"}'),
        ("escalate", b"binary"),
    ]
    assert result.replacement == b"binary"
    # The caller's event is untouched.
    assert original.raw == '{"type":"message","room":"r","text":"call 555 0100"}'


# -- failing steps ---------------------------------------------------------------


def errors(metrics: Metrics, step: str) -> float | None:
    return metrics.registry.get_sample_value("chatguard_pipeline_errors_total", {"step": step})


async def test_a_failing_step_is_skipped_and_counted(
    session: SessionContext, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    seen: Seen = []
    pipeline = Pipeline(
        {
            "sanctions": Recorder("sanctions", seen, Verdict(inject=(A,))),
            "policy": Broken(seen, "policy"),
            "banners": Recorder("banners", seen, Verdict(inject=(B,))),
        },
        metrics,
    )
    with caplog.at_level(logging.ERROR, logger="chatguard.pipeline"):
        result = await pipeline.run(message(), session)
    assert result == Verdict(inject=(A, B))
    assert [name for name, _ in seen] == ["sanctions", "policy", "banners"]
    assert errors(metrics, "policy") == 1.0
    assert errors(metrics, "banners") is None
    assert any("policy" in r.getMessage() and r.exc_info for r in caplog.records)

    await pipeline.run(message(), session)
    assert errors(metrics, "policy") == 2.0


async def test_every_failing_step_is_counted_under_its_own_name(session: SessionContext) -> None:
    metrics = Metrics()
    seen: Seen = []
    pipeline = Pipeline(
        {"escalate": Broken(seen, "escalate"), "evidence": Broken(seen, "evidence")}, metrics
    )
    assert await pipeline.run(message(), session) == PASS
    assert [name for name, _ in seen] == ["evidence", "escalate"]
    assert errors(metrics, "evidence") == 1.0
    assert errors(metrics, "escalate") == 1.0


async def test_a_failing_step_without_metrics_is_still_skipped(session: SessionContext) -> None:
    seen: Seen = []
    pipeline = Pipeline({"policy": Broken(seen, "policy"), "banners": Recorder("banners", seen)})
    assert await pipeline.run(message(), session) is PASS
    assert [name for name, _ in seen] == ["policy", "banners"]


class FakeClock:
    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0)


async def test_time_in_the_pipeline_is_observed(session: SessionContext) -> None:
    metrics = Metrics()
    clock: Callable[[], float] = FakeClock(100.0, 100.003, 200.0, 200.5)
    pipeline = Pipeline({"policy": Recorder("policy", [])}, metrics, clock=clock)
    await pipeline.run(message(), session)
    sample = metrics.registry.get_sample_value
    assert sample("chatguard_pipeline_seconds_count") == 1.0
    assert sample("chatguard_pipeline_seconds_sum") == pytest.approx(0.003)
    assert sample("chatguard_pipeline_seconds_bucket", {"le": "0.005"}) == 1.0
    assert sample("chatguard_pipeline_seconds_bucket", {"le": "0.0025"}) == 0.0
    # A dropped frame is timed too.
    pipeline = Pipeline({"policy": Recorder("p", [], Verdict(forward=False))}, metrics, clock=clock)
    await pipeline.run(message(), session)
    assert sample("chatguard_pipeline_seconds_count") == 2.0
    assert sample("chatguard_pipeline_seconds_sum") == pytest.approx(0.503)


# -- the control step ----------------------------------------------------------------


async def test_control_step_leaves_chat_events_alone(session: SessionContext) -> None:
    step = ControlStep()
    step.register("chatguard.hold", _never)
    for kind in EventKind:
        if kind is EventKind.CONTROL:
            continue
        event = ChatEvent(kind, Side.CLIENT, '{"type":"chatguard.hold"}', sender="alice")
        assert await step(event, session, Findings()) is PASS


async def _never(event: ChatEvent, session: SessionContext) -> Verdict:
    raise AssertionError("this handler must not run")


@pytest.mark.parametrize(
    "answer",
    [
        PASS,
        Verdict(forward=True, replacement='{"type":"message"}', reason="handler"),
        Verdict(forward=True, inject=(banner("ok"), Inject(Side.UPSTREAM, "to-upstream"))),
        Verdict(forward=False, inject=(banner("ok"),), reason="hold-confirmed"),
    ],
)
async def test_control_step_dispatches_and_never_forwards(
    session: SessionContext, answer: Verdict
) -> None:
    calls: list[tuple[ChatEvent, SessionContext]] = []

    async def on_hold(event: ChatEvent, ctx: SessionContext) -> Verdict:
        calls.append((event, ctx))
        return answer

    step = ControlStep()
    step.register("chatguard.hold", on_hold)
    step.register("chatguard.report", _never)
    event = control({"type": "chatguard.hold", "hold": "h-1", "choice": "send"})
    verdict = await step(event, session, Findings())
    assert calls == [(event, session)]
    assert verdict.forward is False
    assert verdict.replacement is None
    assert verdict.inject == answer.inject
    assert verdict.reason == answer.reason


@pytest.mark.parametrize(
    ("obj", "shown"),
    [
        ({"type": "chatguard.bogus"}, "'chatguard.bogus'"),
        ({"type": "chatguard.HOLD"}, "'chatguard.HOLD'"),
        ({"hold": "h-1"}, "None"),
        ({"type": 5}, "5"),
        ({"type": ["chatguard.hold"]}, "['chatguard.hold']"),
    ],
)
async def test_unknown_control_types_get_an_error_notice(
    session: SessionContext, obj: dict[str, Any], shown: str
) -> None:
    step = ControlStep()
    step.register("chatguard.hold", _never)
    verdict = await step(control(obj), session, Findings())
    assert verdict.forward is False
    assert verdict.reason == "control"
    assert len(verdict.inject) == 1
    inject = verdict.inject[0]
    assert inject.toward is Side.CLIENT
    assert isinstance(inject.payload, Notice)
    assert inject.payload.kind == "error"
    assert inject.payload.severity is Severity.WARNING
    assert inject.payload.text == f"unknown control frame type {shown}"


async def test_a_control_event_without_a_body_gets_an_error(session: SessionContext) -> None:
    event = ChatEvent(EventKind.CONTROL, Side.CLIENT, "{}", sender="alice", control=None)
    verdict = await ControlStep()(event, session, Findings())
    assert verdict.forward is False
    assert verdict.inject == (error_notice("unknown control frame type None"),)


async def test_control_step_with_another_type_field(session: SessionContext) -> None:
    got: list[str] = []

    async def on_ack(event: ChatEvent, ctx: SessionContext) -> Verdict:
        got.append("ack")
        return PASS

    step = ControlStep(type_field="event")
    step.register("guard.ack", on_ack)
    verdict = await step(
        control({"event": "guard.ack", "type": "chatguard.hold"}), session, Findings()
    )
    assert got == ["ack"]
    assert verdict.forward is False


async def test_control_step_follows_a_dotted_type_field(session: SessionContext) -> None:
    got: list[str] = []

    async def on_ack(event: ChatEvent, ctx: SessionContext) -> Verdict:
        got.append("ack")
        return PASS

    step = ControlStep(type_field="meta.type")
    step.register("guard.ack", on_ack)
    await step(control({"meta": {"type": "guard.ack"}}), session, Findings())
    assert got == ["ack"]


async def test_in_the_pipeline_a_control_frame_stops_the_chain(session: SessionContext) -> None:
    seen: Seen = []
    step = ControlStep()

    async def on_report(event: ChatEvent, ctx: SessionContext) -> Verdict:
        return Verdict(forward=True, inject=(banner("thanks"),))

    step.register("chatguard.report", on_report)
    pipeline = Pipeline(
        {name: Recorder(name, seen) for name in ORDER if name != "control"} | {"control": step}
    )
    verdict = await pipeline.run(control({"type": "chatguard.report"}), session)
    assert verdict == Verdict(forward=False, inject=(banner("thanks"),))
    assert seen == []
    # Chat events go on to every later step.
    await pipeline.run(message(), session)
    assert [name for name, _ in seen] == list(ORDER[1:])


async def test_a_control_frame_whose_handler_raises_is_not_forwarded(
    session: SessionContext,
) -> None:
    async def on_hold(event: ChatEvent, ctx: SessionContext) -> Verdict:
        raise RuntimeError("handler bug")

    step = ControlStep()
    step.register("chatguard.hold", on_hold)
    metrics = Metrics()
    verdict = await Pipeline({"control": step}, metrics).run(
        control({"type": "chatguard.hold", "hold": "h-1"}), session
    )
    assert errors(metrics, "control") == 1.0
    assert verdict.forward is False


async def test_pass_through_pipeline(session: SessionContext) -> None:
    metrics = Metrics()
    pipeline = Pipeline.pass_through(metrics)
    assert [name for name, _ in pipeline.steps] == ["control"]
    assert pipeline.metrics is metrics
    assert await pipeline.run(message(), session) is PASS
    verdict = await pipeline.run(control({"type": "chatguard.hold"}), session)
    assert verdict.forward is False
    assert verdict.inject == (error_notice("unknown control frame type 'chatguard.hold'"),)


def test_error_notice_goes_to_the_client() -> None:
    inject = error_notice("nope")
    assert inject == Inject(
        Side.CLIENT, Notice(kind="error", text="nope", severity=Severity.WARNING)
    )


async def test_a_step_sees_only_the_events_it_declares_an_interest_in() -> None:
    seen: list[tuple[Side, EventKind]] = []

    class ClientMessagesOnly:
        interests = frozenset({(Side.CLIENT, EventKind.MESSAGE)})

        async def __call__(
            self, event: ChatEvent, session: SessionContext, findings: Findings
        ) -> Verdict:
            seen.append((event.origin, event.kind))
            return Verdict(forward=False)

    pipeline = Pipeline({"sanctions": ClientMessagesOnly()})
    session = SessionContext(session_id="s", peer="127.0.0.1", connected_at=0.0)
    from_upstream = ChatEvent(EventKind.MESSAGE, Side.UPSTREAM, "{}", sender="amy", room="r")
    from_client = ChatEvent(EventKind.MESSAGE, Side.CLIENT, "{}", sender="bob", room="r")
    assert (await pipeline.run(from_upstream, session)).forward
    assert not (await pipeline.run(from_client, session)).forward
    assert seen == [(Side.CLIENT, EventKind.MESSAGE)]


# -- commands sent to the service name (XMPP's service JID) -------------------


def service_command(text: str) -> ChatEvent:
    return ChatEvent(
        EventKind.CONTROL,
        Side.CLIENT,
        "<message/>",
        sender="alice",
        text=text,
        control={"type": SERVICE_COMMAND},
    )


async def test_a_service_command_reaches_the_text_command_handler(
    session: SessionContext,
) -> None:
    calls: list[str | None] = []

    async def report(event: ChatEvent, ctx: SessionContext) -> Verdict:
        calls.append(event.text)
        return Verdict(inject=(banner("thanks"),))

    step = ControlStep()
    step.register_command("report", report)
    verdict = await step(service_command("/REPORT he is creepy"), session, Findings())
    assert calls == ["/REPORT he is creepy"]
    assert verdict.forward is False
    assert verdict.inject == (banner("thanks"),)


async def test_an_unknown_service_command_lists_the_known_ones(session: SessionContext) -> None:
    step = ControlStep()
    step.register_command("send", _never)
    step.register_command("cancel", _never)
    verdict = await step(service_command("/dance"), session, Findings())
    assert verdict.forward is False
    assert verdict.inject == (error_notice("unknown command 'dance' (known: cancel, send)"),)


async def test_an_empty_service_command_is_dropped_quietly(session: SessionContext) -> None:
    verdict = await ControlStep()(service_command("/"), session, Findings())
    assert (verdict.forward, verdict.inject) == (False, ())


class _Recorder:
    """A record-keeping step: runs even after a drop, and says so."""

    after_drop = True

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, object]] = []

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        self.seen.append((findings.dropped_by, (findings.original or event).raw))
        return Verdict(forward=True, inject=(banner("kept"),))


class _Dropper:
    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        return Verdict(forward=False, inject=(banner("held"),))


class _Redactor:
    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        return Verdict(replacement="masked")


async def test_record_keeping_steps_run_after_a_drop_and_never_bring_the_frame_back(
    session: SessionContext,
) -> None:
    recorder, skipped = _Recorder(), _Recorder()
    skipped.after_drop = False  # type: ignore[misc]
    pipeline = Pipeline({"banners": _Dropper(), "evidence": recorder, "escalate": skipped})
    event = ChatEvent(EventKind.MESSAGE, Side.CLIENT, "typed", sender="amy", room="r")
    verdict = await pipeline.run(event, session)
    assert verdict.forward is False
    assert verdict.inject == (banner("held"), banner("kept"))
    assert recorder.seen == [("banners", "typed")]
    assert skipped.seen == []


async def test_later_steps_can_see_the_frame_as_it_arrived_before_a_redaction(
    session: SessionContext,
) -> None:
    recorder = _Recorder()
    pipeline = Pipeline({"banners": _Redactor(), "evidence": recorder})
    event = ChatEvent(EventKind.MESSAGE, Side.CLIENT, "typed", sender="amy", room="r")
    verdict = await pipeline.run(event, session)
    assert (verdict.forward, verdict.replacement) == (True, "masked")
    assert recorder.seen == [(None, "typed")]


async def test_commands_to_the_service_name_run_the_text_command_handlers(
    session: SessionContext,
) -> None:
    seen: list[str | None] = []

    async def on_send(event: ChatEvent, ctx: SessionContext) -> Verdict:
        seen.append(event.text)
        return Verdict(forward=True, inject=(Inject(Side.UPSTREAM, "held frame"),))

    step = ControlStep()
    step.register_command("send", on_send)
    event = ChatEvent(
        EventKind.CONTROL,
        Side.CLIENT,
        b"PRIVMSG ChatGuard :SEND",
        sender="alice",
        text="/SEND",
        control={"type": SERVICE_COMMAND, "command": "send", "args": ""},
    )
    verdict = await step(event, session, Findings())
    assert seen == ["/SEND"]
    assert verdict.forward is False
    assert verdict.inject == (Inject(Side.UPSTREAM, "held frame"),)
    unknown = ChatEvent(
        EventKind.CONTROL,
        Side.CLIENT,
        b"PRIVMSG ChatGuard :dance",
        sender="alice",
        text="/dance",
        control={"type": SERVICE_COMMAND, "command": "dance"},
    )
    refused = await step(unknown, session, Findings())
    assert refused.forward is False
    assert refused.inject == (error_notice("unknown command 'dance' (known: send)"),)
