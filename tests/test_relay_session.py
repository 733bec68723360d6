"""The relayed pair: frames, liveness, closing handshakes, back-pressure.

Real ``websockets`` clients talk through the real relay to a real upstream
(the example chat service, or the probe when the upstream must misbehave).
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from chatguard.events import PASS, ChatEvent, EventKind, Inject, Notice, Side, Verdict
from chatguard.pipeline import Findings, SessionContext
from tests.support.probe import ProbeUpstream
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit


async def recv_json(ws: websockets.ClientConnection) -> dict[str, object]:
    async with asyncio.timeout(unit(3)):
        frame = await ws.recv()
    assert isinstance(frame, str)
    data = json.loads(frame)
    assert isinstance(data, dict)
    return data


async def test_chat_round_trip_through_the_relay(chat_service, make_guard: GuardFactory) -> None:
    guard = await make_guard(chat_service.url)
    async with (
        websockets.connect(ws_url(guard, "/ws?user=alice&age=12")) as alice,
        websockets.connect(ws_url(guard, "/ws?user=bob&age=30")) as bob,
    ):
        assert (await recv_json(alice))["user"] == {
            "id": "alice",
            "name": "alice",
            "age_band": "minor",
        }
        await recv_json(bob)
        for ws in (alice, bob):
            await ws.send(json.dumps({"type": "join", "room": "lobby"}))
        assert (await recv_json(alice)) == {"type": "joined", "room": "lobby", "user": "alice"}
        assert (await recv_json(alice))["user"] == "bob"
        await recv_json(bob)
        await bob.send(json.dumps({"type": "dm", "to": "alice", "text": "hello"}))
        dm = await recv_json(alice)
        assert (dm["type"], dm["from"], dm["to"], dm["text"]) == ("dm", "bob", "alice", "hello")
        assert (await recv_json(bob))["text"] == "hello"


async def test_text_and_binary_frames_pass_byte_for_byte(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    frames: list[str | bytes] = [
        "not json at all",
        "[1, 2, 3]",
        '{"type": "mystery",   "spacing":  "kept"}',
        '{"type": "message", "room": "r", "text": 5}',
        '{"type": "message"',
        b"\x00\x01\xffbinary",
        "{" * 5000,
        "",
    ]
    async with websockets.connect(ws_url(guard)) as client:
        upstream = await probe.next_connection(unit(3))
        for frame in frames:
            await client.send(frame)
            async with asyncio.timeout(unit(3)):
                assert await upstream.received.get() == frame
                assert await client.recv() == frame


async def test_malformed_frames_do_not_affect_another_session(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    async with (
        websockets.connect(ws_url(guard, "/ws?user=eve")) as eve,
        websockets.connect(ws_url(guard, "/ws?user=ann")) as ann,
    ):
        await recv_json(eve)
        await recv_json(ann)
        for bad in ("{", "\ud800".encode("utf-8", "surrogatepass"), '{"type": null}', "null"):
            await eve.send(bad)
        await ann.send(json.dumps({"type": "join", "room": "calm"}))
        assert (await recv_json(ann))["type"] == "joined"
        # eve's session is still alive too: the upstream answered each bad frame.
        reply = await recv_json(eve)
        assert reply["type"] == "error"


async def test_control_frames_are_consumed_and_answered(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    async with websockets.connect(ws_url(guard, "/ws?user=carl")) as carl:
        await recv_json(carl)
        await carl.send(json.dumps({"type": "chatguard.confirm", "hold": "h-1", "choice": "send"}))
        error = await recv_json(carl)
        assert error["type"] == "chatguard.error"
        assert "chatguard.confirm" in str(error["reason"])
    assert not any("chatguard." in str(f) for f in chat_service.frames_received)


async def test_pipeline_verdicts_drop_replace_and_inject(
    chat_service, make_guard: GuardFactory
) -> None:
    class Rewriter:
        """A test step: drops 'secret', rewrites 'shout', banners on 'warn'."""

        async def __call__(
            self, event: ChatEvent, session: SessionContext, findings: Findings
        ) -> Verdict:
            if event.kind is not EventKind.MESSAGE or event.origin is not Side.CLIENT:
                return PASS
            assert session.identity is not None
            assert session.identity.user_id == "dana"
            if event.text == "secret":
                return Verdict(forward=False)
            if event.text == "shout":
                frame = json.dumps({"type": "message", "room": event.room, "text": "SHOUT"})
                return Verdict(replacement=frame)
            if event.text == "warn":
                notice = Notice("banner", "Careful", banner_id="b1", room=event.room)
                return Verdict(inject=(Inject(Side.CLIENT, notice),))
            return PASS

    guard = await make_guard(chat_service.url, steps={"policy": Rewriter()})
    async with websockets.connect(ws_url(guard, "/ws?user=dana&age=15")) as dana:
        await recv_json(dana)
        await dana.send(json.dumps({"type": "join", "room": "r"}))
        await recv_json(dana)
        for text in ("secret", "shout", "warn"):
            await dana.send(json.dumps({"type": "message", "room": "r", "text": text}))
        # The banner is injected at once; the echoes come back from upstream.
        got = [await recv_json(dana) for _ in range(3)]
        assert [f["text"] for f in got if f["type"] == "message"] == ["SHOUT", "warn"]
        banner = next(f for f in got if f["type"] == "chatguard.banner")
        assert banner == {
            "type": "chatguard.banner",
            "banner": "b1",
            "text": "Careful",
            "severity": "info",
            "room": "r",
            "with": None,
        }
    texts = [json.loads(f).get("text") for f in chat_service.frames_received]
    assert "secret" not in texts


async def test_client_ping_reaches_upstream_and_pong_returns(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    async with websockets.connect(ws_url(guard), ping_interval=None) as client:
        await probe.next_connection(unit(3))
        waiter = await client.ping(b"liveness")
        async with asyncio.timeout(unit(3)):
            await waiter


async def test_upstream_ping_reaches_client_and_pong_returns(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    async with websockets.connect(ws_url(guard), ping_interval=None):
        upstream = await probe.next_connection(unit(3))
        waiter = await upstream.ws.ping(b"are you there")
        async with asyncio.timeout(unit(3)):
            await waiter


async def test_client_close_code_and_reason_reach_upstream(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    client = await websockets.connect(ws_url(guard))
    upstream = await probe.next_connection(unit(3))
    await client.close(4001, "done here")
    async with asyncio.timeout(unit(3)):
        await upstream.closed.wait()
    assert (upstream.close_code, upstream.close_reason) == (4001, "done here")
    assert client.close_code == 4001


async def test_upstream_close_code_and_reason_reach_client(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    async with websockets.connect(ws_url(guard, "/ws?user=kim")) as kim:
        await recv_json(kim)
        await chat_service.close_user("kim", 4002, "kicked by operator")
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(unit(3)):
                await kim.recv()
    assert (kim.close_code, kim.close_reason) == (4002, "kicked by operator")


async def test_upstream_dropping_the_connection_closes_client_with_1011(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    async with websockets.connect(ws_url(guard)) as client:
        upstream = await probe.next_connection(unit(3))
        upstream.ws.transport.abort()
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(unit(5)):
                await client.recv()
    assert client.close_code == 1011
    await eventually(
        lambda: (
            guard.metrics.registry.get_sample_value(
                "chatguard_session_closes_total", {"cause": "upstream_lost"}
            )
            == 1.0
        )
    )


async def test_oversized_frame_closes_only_that_session(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url, limits={"max_frame_bytes": 4096})
    async with (
        websockets.connect(ws_url(guard), max_size=None) as big,
        websockets.connect(ws_url(guard)) as small,
    ):
        await big.send("x" * 5000)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(unit(3)):
                await big.recv()
        assert big.close_code == 1009
        await small.send("still here")
        async with asyncio.timeout(unit(3)):
            assert await small.recv() == "still here"


async def test_slow_reader_slows_only_its_own_pair(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    """A client that stops reading back-pressures its upstream leg; memory stays bounded."""
    probe.echo = False
    guard = await make_guard(probe.url, limits={"write_buffer_bytes": 65536})
    # Incompressible, so permessage-deflate cannot hide the volume.
    chunk = random.Random(7).randbytes(32768).hex()
    total = 1500  # 98 MB if nothing pushed back
    async with (
        websockets.connect(ws_url(guard), max_queue=1, compression=None) as slow,
        websockets.connect(ws_url(guard)) as other,
    ):
        slow_up = await probe.next_connection(unit(3))
        other_up = await probe.next_connection(unit(3))
        sent = 0

        async def flood() -> None:
            nonlocal sent
            for _ in range(total):
                await slow_up.ws.send(chunk)
                sent += 1

        flooder = asyncio.create_task(flood())
        await asyncio.sleep(unit(1))
        # The flood stalls: socket buffers and the relay's bounded buffers
        # hold a few MB at most, far from everything.
        assert not flooder.done()
        assert sent < total / 2
        # The other pair is unaffected.
        await other_up.ws.send("ping?")
        async with asyncio.timeout(unit(2)):
            assert await other.recv() == "ping?"
        # When the slow client reads again, everything arrives, in order.
        received = 0
        async with asyncio.timeout(unit(30)):
            while received < total:
                assert await slow.recv() == chunk
                received += 1
            await flooder
        assert sent == total


BOMB = '<!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><message xmlns="jabber:client"><body>&b;</body></message>'  # noqa: E501


async def test_a_frame_the_codec_judges_bad_is_refused_and_counted(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url, codec={"type": "xmpp"})
    async with websockets.connect(ws_url(guard)) as client:
        await client.send(BOMB)
        async with asyncio.timeout(unit(3)):
            refusal = await client.recv()
        assert isinstance(refusal, str)
        assert 'type="headline"' in refusal
        assert "ChatGuard refused your frame: dtd" in refusal
        # The session goes on, and the refused frame never went upstream.
        await client.send("<presence xmlns='jabber:client'/>")
        async with asyncio.timeout(unit(3)):
            assert await client.recv() == "<presence xmlns='jabber:client'/>"
        assert probe.connections[0].frames == ["<presence xmlns='jabber:client'/>"]
        # A bad frame from the upstream is withheld from the client the same way.
        await probe.connections[0].ws.send("<message xmlns='jabber:client'><body>cut")
        async with asyncio.timeout(unit(3)):
            withheld = await client.recv()
        assert isinstance(withheld, str)
        assert "ChatGuard refused a server frame: malformed" in withheld
    count = guard.metrics.registry.get_sample_value
    labels = {"origin": "client", "reason": "dtd", "action": "refused"}
    assert count("chatguard_bad_frames_total", labels) == 1
    labels = {"origin": "upstream", "reason": "malformed", "action": "refused"}
    assert count("chatguard_bad_frames_total", labels) == 1


async def test_a_bad_frame_passes_unchanged_when_so_configured(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url, codec={"type": "xmpp"}, xmpp={"on_bad_stanza": "pass"})
    async with websockets.connect(ws_url(guard)) as client:
        await client.send(BOMB)
        async with asyncio.timeout(unit(3)):
            assert await client.recv() == BOMB  # there and back, untouched
    count = guard.metrics.registry.get_sample_value
    for origin in ("client", "upstream"):
        labels = {"origin": origin, "reason": "dtd", "action": "passed"}
        assert count("chatguard_bad_frames_total", labels) == 1
