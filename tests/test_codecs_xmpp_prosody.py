"""XMPP over WebSocket through ChatGuard in front of a real Prosody.

Real parts only: Prosody from Debian (tests/support/prosody.py), the real
relay and pipeline with the default policy pack, and a small RFC 7395 client
on ``websockets`` (tests/support/xmpp_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatguard.app import ChatGuard
from chatguard.cases.model import ModeratorAction
from chatguard.config import load
from chatguard.events import Identity
from tests.support.cases import cases_of
from tests.support.prosody import MUC, Prosody, binaries
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit
from tests.support.xmpp_client import CLIENT, XmppClient, body_of, notice, q, text

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "chatguard.localhost"
#: The tests play a trusted auth gateway that attests age bands in headers.
GATEWAY = {"user": "X-Test-User", "attrs": {"age_band": "X-Test-Age-Band"}}


def session_users(guard: ChatGuard) -> set[str]:
    return {s.context.identity.user_id for s in guard.relay.sessions if s.context.identity}


def headline(e: Any) -> bool:
    return e.tag == q(CLIENT, "message") and e.get("type") == "headline"


def from_service(e: Any) -> bool:
    return e.tag == q(CLIENT, "message") and e.get("from") == SERVICE


async def xmpp_guard(
    make_guard: GuardFactory,
    prosody: Prosody,
    pack: tuple[Path, Path] | None = None,
    *,
    pass_through: bool = False,
    **extra: Any,
) -> ChatGuard:
    """ChatGuard in front of ``prosody``: the default pack unless ``pack`` is
    given, or no pack at all (``pass_through``)."""
    policies, banners = pack or (ROOT / "policies", ROOT / "banners")
    if not pass_through:
        extra["policy"] = {"directory": str(policies), "watch": False}
        extra["banners"] = {"directory": str(banners)}
    guard = await make_guard(
        prosody.upstream,
        codec={"type": "xmpp"},
        xmpp={"service_jid": SERVICE, **extra.pop("xmpp", {})},
        identity={"header": GATEWAY},
        **extra,
    )
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    return guard


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[list[XmppClient]]:
    """Clients a test opens; all closed at teardown."""
    opened: list[XmppClient] = []
    yield opened
    for client in opened:
        # A test may have broken the connection on purpose.
        with contextlib.suppress(Exception):
            await client.close()


async def sign_in(
    prosody: Prosody,
    guard: ChatGuard,
    clients: list[XmppClient],
    name: str,
    *,
    band: str | None = None,
) -> XmppClient:
    """A new user signed in through ``guard``; ``band`` attested by the gateway header."""
    user = prosody.register(name)
    client = XmppClient(ws_url(guard, "/xmpp-websocket"), user, "secret")
    clients.append(client)
    headers = {"X-Test-User": client.bare, "X-Test-Age-Band": band} if band else None
    await client.connect(headers)
    return client


async def test_chat_and_room_messages_flow_between_two_users(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient], test_pack
) -> None:
    guard = await xmpp_guard(make_guard, prosody, test_pack)
    alice = await sign_in(prosody, guard, clients, "alice")
    bob = await sign_in(prosody, guard, clients, "bob")
    # Prosody chose the ``xmpp`` subprotocol; the client got that answer through the relay.
    assert alice.ws.subprotocol == bob.ws.subprotocol == "xmpp"
    # The bind result attested who each connection is.
    await eventually(lambda: session_users(guard) == {alice.bare, bob.bare})
    await alice.message(bob.bare, "hello bob & <friends>")
    got = await bob.expect(body_of("chat", alice.bare))
    assert text(got) == "hello bob & <friends>"

    room = f"lobby@{MUC}"
    await alice.join(room, "al")
    await bob.join(room, "bo")
    await bob.message(room, "hi room", "groupchat")
    got = await alice.expect(body_of("groupchat"))
    assert (got.get("from"), text(got)) == (f"{room}/bo", "hi room")
    # Both sessions saw the room's occupants join, with their real JIDs.
    assert guard.directory.members(room) == {alice.bare, bob.bare}
    events = guard.metrics.registry.get_sample_value
    assert events("chatguard_chat_events_total", {"kind": "direct", "origin": "client"}) == 1
    assert events("chatguard_chat_events_total", {"kind": "message", "origin": "client"}) == 1


@pytest.mark.parametrize("pack", ["test", pytest.param("default", marks=pytest.mark.slow)])
async def test_speed_bumps_work_over_xmpp(
    prosody: Prosody,
    make_guard: GuardFactory,
    clients: list[XmppClient],
    test_pack: tuple[Path, Path],
    pack: str,
) -> None:
    # One guard for the whole scenario. With the shipped default pack (whose
    # load takes tens of seconds on a busy machine) it is a slow test; the
    # small test pack has the same rules and banner ids for these cases.
    guard = await xmpp_guard(make_guard, prosody, test_pack if pack == "test" else None)
    adult = await sign_in(prosody, guard, clients, "adult")
    child = await sign_in(prosody, guard, clients, "child")
    # The child's age band as the operator's user directory attests it.
    await guard.directory.record(Identity(child.bare, "child", {"age_band": "minor"}))

    # 1. Asked to move apps, the child is warned; the adult is not told.
    await adult.message(child.bare, "add me on snapchat")
    got = await child.expect(body_of("chat", adult.bare))
    assert text(got) == "add me on snapchat"
    banner = await child.expect(lambda e: headline(e) and notice(e)["kind"] == "banner")
    assert banner.get("from") == SERVICE
    assert banner.get("to") == child.jid
    # The default catalogue names who is asking; the test pack does not.
    assert "is asking you to chat somewhere else." in text(banner)
    assert notice(banner) == {
        "kind": "banner",
        "severity": "warning",
        "banner": "off_platform_warning",
        "with": adult.bare,
    }
    await adult.nothing(headline)

    # 2. A child about to send a phone number is asked first; "send" to the
    # service JID releases it.
    kid = await sign_in(prosody, guard, clients, "kid", band="minor")
    await kid.message(child.bare, "call me 555 867 5309")
    hold = await kid.expect(lambda e: headline(e) and notice(e)["kind"] == "hold")
    assert notice(hold)["banner"] == "pi_share_confirm"
    assert f'Reply "send" or "cancel" to {SERVICE}' in text(hold)
    await child.nothing(body_of("chat", kid.bare))
    await kid.message(SERVICE, "send")
    got = await child.expect(body_of("chat", kid.bare))
    assert text(got) == "call me 555 867 5309"
    sent = guard.metrics.registry.get_sample_value("chatguard_holds_total", {"outcome": "sent"})
    assert sent == 1
    # Had "send" reached Prosody, it would bounce it: the service domain
    # does not exist there. Nothing comes back from the service JID.
    await kid.nothing(lambda e: from_service(e) and e.get("type") == "error")

    # 3. Other commands are answered by ChatGuard, never by the server.
    await kid.message(SERVICE, "cancel")
    answer = await kid.expect(headline)
    assert text(answer) == "nothing is waiting to be sent"
    await kid.message(SERVICE, "dance")
    answer = await kid.expect(headline)
    assert text(answer).startswith("unknown command 'dance'")
    await kid.nothing(lambda e: from_service(e) and e.get("type") == "error")
    # The same message to a domain that does not exist is bounced by
    # Prosody, so the checks above would have seen a bounce.
    await kid.message("nobody.invalid", "hello")
    await kid.expect(lambda e: e.get("from") == "nobody.invalid" and e.get("type") == "error")


async def test_evidence_capture_records_the_raw_stanza(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient], test_pack
) -> None:
    guard = await xmpp_guard(make_guard, prosody, test_pack)
    child = await sign_in(prosody, guard, clients, "young", band="minor")
    adult = await sign_in(prosody, guard, clients, "grown", band="adult")
    frame = adult.message_frame(child.bare, "send me a pic")
    await adult.send(frame)
    banner = await adult.expect(headline)
    assert notice(banner)["banner"] == "deterrence_image_request"
    await eventually(lambda: len(guard.recorded.captures) == 1)
    capture = guard.recorded.captures[0]
    assert capture.frame == frame  # the stanza exactly as the client sent it
    [case] = await cases_of(guard)
    assert case.subject == adult.bare
    assert set(case.participants) == {adult.bare, child.bare}


async def test_a_room_message_warns_the_minor_in_the_room(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient], test_pack
) -> None:
    guard = await xmpp_guard(make_guard, prosody, test_pack)
    child = await sign_in(prosody, guard, clients, "teen", band="minor")
    adult = await sign_in(prosody, guard, clients, "stranger", band="adult")
    room = f"games@{MUC}"
    await child.join(room, "teen")
    await adult.join(room, "xx")
    # Membership comes from the room's own presence, with real JIDs.
    await eventually(lambda: guard.directory.members(room) == {child.bare, adult.bare})
    await adult.message(room, "add me on snap", "groupchat")
    got = await child.expect(body_of("groupchat"))
    assert (got.get("from"), text(got)) == (f"{room}/xx", "add me on snap")
    banner = await child.expect(headline)
    assert notice(banner) == {
        "kind": "banner",
        "severity": "warning",
        "banner": "off_platform_warning",
        "room": room,
    }
    await adult.nothing(headline)


async def test_redaction_masks_only_the_body_of_the_stanza(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient], test_pack
) -> None:
    guard = await xmpp_guard(make_guard, prosody, test_pack)
    sender = await sign_in(prosody, guard, clients, "anon")  # no age band: unknown
    reader = await sign_in(prosody, guard, clients, "reader")
    await sender.send(
        f"<message xmlns='jabber:client' to='{reader.bare}' type='chat' id='r1'>"
        "<body>ring 555-123-4567 &amp; ask</body><thread>t-9</thread></message>"
    )
    got = await reader.expect(body_of("chat", sender.bare))
    assert text(got) == "ring ████████████ & ask"
    assert (got.get("id"), got.findtext(q(CLIENT, "thread"))) == ("r1", "t-9")
    replaced = {"effect": "replaced"}
    assert guard.metrics.registry.get_sample_value("chatguard_verdicts_total", replaced) == 1


async def test_a_body_that_cannot_be_masked_is_held_back_not_sent_unmasked(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient], test_pack
) -> None:
    guard = await xmpp_guard(make_guard, prosody, test_pack)
    sender = await sign_in(prosody, guard, clients, "anon2")  # no age band: unknown
    reader = await sign_in(prosody, guard, clients, "reader2")
    await sender.send(
        f"<message xmlns='jabber:client' to='{reader.bare}' type='chat'>"
        "<body>ring 555-123-4567 <b xmlns='x'>now</b></body></message>"
    )
    told = await sender.expect(headline)
    assert "could not be hidden" in text(told)
    await reader.nothing(body_of("chat", sender.bare))


async def test_a_report_to_the_service_jid_opens_a_case_and_a_mute_applies(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient], test_pack
) -> None:
    guard = await xmpp_guard(make_guard, prosody, test_pack)
    child = await sign_in(prosody, guard, clients, "minnow", band="minor")
    adult = await sign_in(prosody, guard, clients, "pike", band="adult")
    await adult.message(child.bare, "you are so mature")
    await child.expect(body_of("chat", adult.bare))

    # The child reports the adult to the service JID: a case opens, and the
    # report never reaches Prosody (it would bounce: the service domain does
    # not exist there).
    await child.message(SERVICE, f"report {adult.bare} he makes me uncomfortable")
    thanks = await child.expect(headline)
    assert notice(thanks)["kind"] == "banner"
    [case] = await cases_of(guard)
    assert case.conversation == f"dm:{min(child.bare, adult.bare)}:{max(child.bare, adult.bare)}"
    assert case.subject == adult.bare
    assert case.severity == "high"  # a child's report
    await child.nothing(lambda e: from_service(e) and e.get("type") == "error")

    # A moderator mutes the adult from the console: they are told, and their
    # next message stops at the sidecar.
    await guard.cases.claim(case.id, "mod1")
    await guard.cases.act(
        case.id, "mod1", ModeratorAction("mute", duration=600, reason="reported by a child")
    )
    muted = await adult.expect(headline)
    assert "muted" in text(muted)
    await adult.message(child.bare, "are you there")
    again = await adult.expect(headline)
    assert "muted" in text(again)
    await child.nothing(body_of("chat", adult.bare))


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    '<message xmlns="jabber:client" to="{to}" type="chat"><body>&lol3;</body></message>'
)


async def test_a_refused_bomb_leaves_the_session_and_others_working(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient]
) -> None:
    guard = await xmpp_guard(make_guard, prosody, pass_through=True)
    evil = await sign_in(prosody, guard, clients, "evil")
    other = await sign_in(prosody, guard, clients, "other")
    await evil.send(BILLION_LAUGHS.format(to=other.bare))
    refusal = await evil.expect(headline)
    assert text(refusal) == "ChatGuard refused your frame: dtd"
    await evil.send("<message xmlns='jabber:client' to='x' type='chat'><body>unclosed")
    assert text(await evil.expect(headline)) == "ChatGuard refused your frame: malformed"
    await evil.send(f"<message xmlns='jabber:client'><body>{'x' * 300_000}</body></message>")
    assert text(await evil.expect(headline)) == "ChatGuard refused your frame: too_large"
    await other.nothing(body_of("chat"))
    # Both sessions carry on.
    await evil.message(other.bare, "sorry")
    assert text(await other.expect(body_of("chat", evil.bare))) == "sorry"
    await other.message(evil.bare, "ok")
    assert text(await evil.expect(body_of("chat", other.bare))) == "ok"
    count = guard.metrics.registry.get_sample_value
    for reason in ("dtd", "malformed", "too_large"):
        labels = {"origin": "client", "reason": reason, "action": "refused"}
        assert count("chatguard_bad_frames_total", labels) == 1


async def test_a_passed_bomb_is_the_servers_to_refuse(
    prosody: Prosody, make_guard: GuardFactory, clients: list[XmppClient]
) -> None:
    guard = await xmpp_guard(make_guard, prosody, pass_through=True, xmpp={"on_bad_stanza": "pass"})
    evil = await sign_in(prosody, guard, clients, "evil")
    other = await sign_in(prosody, guard, clients, "other")
    await evil.send(BILLION_LAUGHS.format(to=other.bare))
    labels = {"origin": "client", "reason": "dtd", "action": "passed"}
    await eventually(
        lambda: guard.metrics.registry.get_sample_value("chatguard_bad_frames_total", labels) == 1
    )
    # Prosody refuses restricted XML itself and ends that stream; the other
    # user's session is untouched.
    with pytest.raises(Exception):  # noqa: B017, PT011 - a stream error, then the close
        await evil.expect(lambda e: False, within=3)
    await other.message(other.bare, "still here")
    assert text(await other.expect(body_of("chat", other.bare))) == "still here"


async def test_the_example_configs_work_together(tmp_path: Path) -> None:
    """examples/xmpp: Prosody's config (made throwaway: ports, paths, root)
    and ChatGuard's, loaded as an operator would, with ports overridden."""
    example = (ROOT / "examples" / "xmpp" / "prosody.cfg.lua").read_text()
    lua = example.replace("{", "{{").replace("}", "}}")
    for line, throwaway in {
        'pidfile = "/run/prosody/prosody.pid"': 'pidfile = "{dir}/prosody.pid"\n'
        'data_path = "{dir}/data"\ncertificates = "{dir}/certs"\nrun_as_root = true',
        "http_ports = {{ 5280 }}": "http_ports = {{ {http_port} }}",
        'info = "/var/log/prosody/prosody.log";': 'info = "{dir}/prosody.log";',
        'error = "/var/log/prosody/prosody.err";': 'error = "{dir}/prosody.err";',
    }.items():
        assert line in lua
        lua = lua.replace(line, throwaway)
    lua = lua.replace(
        'c2s_interfaces = {{ "127.0.0.1" }}',
        'c2s_interfaces = {{ "127.0.0.1" }}\nc2s_ports = {{ {c2s_port} }}',
    )
    binary, ctl = binaries()
    server = Prosody(binary, ctl, tmp_path, lua, domain="chat.example")
    server.start()
    try:
        env = {
            "CHATGUARD__LISTEN__PORT": "0",
            "CHATGUARD__ADMIN__PORT": "0",
            "CHATGUARD__UPSTREAM__URL": server.upstream,
            "CHATGUARD__DATA_DIR": str(tmp_path / "data"),
        }
        cfg = load(ROOT / "examples" / "xmpp" / "chatguard.yaml", env=env)
        # The pack's place is the operator's; the pass-through pipeline is enough here.
        cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, directory=""))
        guard = ChatGuard(cfg)
        await guard.start()
        users = [server.register("ex"), server.register("ex")]
        a, b = (
            XmppClient(ws_url(guard, "/xmpp-websocket"), u, "secret", domain="chat.example")
            for u in users
        )
        try:
            await a.connect()
            await b.connect()
            await a.message(b.bare, "hello through the example")
            assert text(await b.expect(body_of("chat", a.bare))) == "hello through the example"
            await a.message(cfg.xmpp.service_jid, "send")
            answer = await a.expect(headline)
            assert answer.get("from") == "chatguard.chat.example"
        finally:
            await a.close()
            await b.close()
            await guard.stop()
    finally:
        server.stop()
