"""The IRC relay over TCP in front of a real ngIRCd, with real IRC clients."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from chatguard.app import ChatGuard
from chatguard.cases.actions import Actions
from chatguard.cases.model import ModeratorAction
from chatguard.events import Identity, Side
from chatguard.relay.delivery import Directive
from chatguard.relay.lines import LINGER, TcpLineLeg
from chatguard.relay.tcp import parse_proxy_v1
from tests.support.ircclient import RawIrc, UserFactory
from tests.support.net import free_port
from tests.support.ngircd import Ngircd
from tests.support.relay import GuardFactory
from tests.support.timing import eventually, unit
from tests.support.tls import self_signed

ROOT = Path(__file__).resolve().parent.parent


def irc_settings(server: Ngircd, **irc: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "upstream": {"host": server.host, "port": server.port},
        "listen": {"host": "127.0.0.1", "port": 0},
    }
    for key, value in irc.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


async def irc_guard(
    make_guard: GuardFactory, server: Ngircd, *, pack: Path | None = None, **irc: Any
) -> ChatGuard:
    extra: dict[str, Any] = {"codec": {"type": "irc"}, "irc": irc_settings(server, **irc)}
    if pack is not None:
        # The default policies/ pack and banner catalogue as shipped, with
        # its English rules only and the portable matcher: loading all six
        # languages would make this the slowest test of the suite, and the
        # wiring under test is the same.
        shutil.copy(ROOT / "policies" / "policy.yaml", pack / "policy.yaml")
        shutil.copytree(ROOT / "policies" / "en", pack / "en")
        (pack / "signal_model").mkdir()
        shutil.copy(ROOT / "policies" / "signal_model" / "model.json", pack / "signal_model")
        extra["policy"] = {"directory": str(pack), "watch": False, "backend": "fallback"}
        extra["banners"] = {"directory": str(ROOT / "banners")}
    return await make_guard("ws://127.0.0.1:9", **extra)


def address(guard: ChatGuard) -> tuple[str, int]:
    assert guard.irc_address is not None
    return guard.irc_address


async def minor(guard: ChatGuard, nick: str) -> None:
    """The operator's systems attest that ``nick`` is a child."""
    await guard.directory.record(Identity(nick.lower(), nick, {"age_band": "minor"}))


def metric(guard: ChatGuard, name: str) -> float:
    value = guard.metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


# -- transparency ----------------------------------------------------------------


async def test_channel_and_direct_messages_cross_unchanged(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    ann = await irc_user(host, port, "ann", join="#lobby")
    ben = await irc_user(host, port, "ben", join="#lobby")
    ann.connection.privmsg("#lobby", "hello room \u00e9")
    await ben.wait_for("pubmsg", lambda e: e.arguments == ["hello room \u00e9"])
    ben.connection.privmsg("ann", "hello ann")
    event = await ann.wait_for("privmsg")
    assert str(event.source).startswith("ben!")
    assert event.arguments == ["hello ann"]
    assert guard.metrics.registry.get_sample_value("chatguard_connections_open") == pytest.approx(2)


async def test_identity_is_the_nick_the_server_welcomed_and_follows_renames(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    user = await irc_user(host, port, "Cleo")
    await eventually(lambda: any(s.context.identity for s in guard.irc_relay.sessions))  # type: ignore[union-attr]
    (session,) = guard.irc_relay.sessions  # type: ignore[union-attr]
    assert session.context.identity is not None
    assert session.context.identity.user_id == "cleo"
    assert session.context.identity.source == "welcome"
    user.connection.nick("Cleo2")
    await eventually(
        lambda: session.context.identity is not None and session.context.identity.user_id == "cleo2"
    )
    assert session.context.peer == "127.0.0.1"


# -- policy through the relay -----------------------------------------------------


async def test_default_pack_warns_the_minor_captures_evidence_and_holds(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory, tmp_path: Path
) -> None:
    # One guard for the three scenarios: loading the full default pack is
    # the slow part of this test.
    pack = tmp_path / "pack"
    pack.mkdir()
    guard = await irc_guard(make_guard, ngircd, pack=pack)
    await minor(guard, "kid1")
    host, port = address(guard)
    kid = await irc_user(host, port, "kid1")
    stranger = await irc_user(host, port, "stranger1")

    # 1. A stranger asks the child to move to another app: the child is warned.
    stranger.connection.privmsg("kid1", "add me on snapchat")
    banner = await kid.wait_for("privnotice", lambda e: str(e.source).startswith("ChatGuard!"))
    assert banner.arguments[0].startswith("[ChatGuard] ")
    # The message itself still arrives (a banner is a speed bump, not a block).
    await kid.wait_for("privmsg", lambda e: e.arguments == ["add me on snapchat"])

    # 2. Asking the child for pictures is captured as evidence, with the raw
    # line exactly as it crossed the wire.
    stranger.connection.privmsg("kid1", "send me a pic")
    await eventually(lambda: bool(guard.recorded.captures))
    capture = guard.recorded.captures[-1]
    assert capture.frame == b"PRIVMSG kid1 :send me a pic"
    assert capture.sender == "stranger1"
    assert capture.conversation == "dm:kid1:stranger1"

    # 3. The child is about to send a phone number: held until they confirm
    # with a message to the service name, which never reaches the server.
    kid.connection.privmsg("stranger1", "its 555 867 5309")
    prompt = await kid.wait_for("privnotice", lambda e: "/msg ChatGuard send" in e.arguments[0])
    assert str(prompt.source).startswith("ChatGuard!")
    await stranger.sync()
    assert "its 555 867 5309" not in stranger.texts("privmsg")
    kid.connection.privmsg("ChatGuard", "send")
    await stranger.wait_for("privmsg", lambda e: e.arguments == ["its 555 867 5309"])
    await kid.sync()
    assert kid.of("nosuchnick") == []
    sample = guard.metrics.registry.get_sample_value
    assert sample("chatguard_holds_total", {"outcome": "held"}) == 1
    assert sample("chatguard_holds_total", {"outcome": "sent"}) == 1

    # 4. The child reports the stranger to the service name: a case opens
    # for moderators, and the report never reaches the server.
    kid.connection.privmsg("ChatGuard", "report stranger1 he keeps asking for pictures")
    await kid.wait_for("privnotice", lambda e: "Thank you for telling us" in e.arguments[0])
    cases = await guard.cases.list()
    assert any(
        "user_report" in case.categories and case.conversation == "dm:kid1:stranger1"
        for case in cases
    )

    # 5. A moderator mutes the stranger from the console: their messages stop
    # at the sidecar, and they are told why by the service name.
    actions = Actions(guard.store, guard.deliveries)
    await actions.apply(ModeratorAction("mute", duration=600, reason="spam"), "stranger1", "mod")
    await stranger.wait_for("privnotice", lambda e: str(e.source).startswith("ChatGuard!"))
    told = len(stranger.of("privnotice"))
    stranger.connection.privmsg("kid1", "are you there")
    await eventually(lambda: len(stranger.of("privnotice")) > told)
    assert str(stranger.of("privnotice")[-1].source).startswith("ChatGuard!")
    await stranger.sync()
    await kid.sync()
    assert "are you there" not in kid.texts("privmsg")

    # 6. A ban closes the session with an IRC ERROR, and the banned nick is
    # refused when the server welcomes it again.
    await actions.apply(ModeratorAction("ban", reason="grooming"), "stranger1", "mod")
    await stranger.wait_for("error", lambda e: "Closing link" in str(e.target or e.arguments))
    again = await RawIrc.connect(*address(guard))
    await again.send(b"NICK stranger1", b"USER s 0 * :s")
    await again.expect(lambda line: line.startswith(b"ERROR :Closing link: "))
    assert await again.closed()
    assert not any(b" 001 " in line for line in again.lines)
    again.close()
    await kid.sync()
    assert kid.of("nosuchnick") == []


async def test_commands_to_the_service_name_are_never_forwarded(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    user = await irc_user(host, port, "dee")
    user.connection.privmsg("ChatGuard", "report he keeps asking for pictures")
    user.connection.privmsg("chatguard", "frobnicate")
    reply = await user.wait_for("privnotice", lambda e: "unknown command" in e.arguments[0])
    assert str(reply.source).startswith("ChatGuard!")
    await user.sync()
    assert user.of("nosuchnick") == []


async def test_a_close_directive_ends_the_session_with_an_irc_error(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    raw = await RawIrc.connect(host, port, "eve")
    await raw.send(b"JOIN #closing")
    await raw.expect(lambda line: b" JOIN " in line)
    other = await irc_user(host, port, "fay", join="#closing")
    # A reason with a line break in it must not become a second command.
    reason = "banned by a moderator\r\nPRIVMSG #closing :injected"
    reached = await guard.deliveries.apply(
        Directive("eve", close_code=4003, close_reason=reason).to_json()
    )
    assert reached == 1
    await raw.expect(lambda line: line.startswith(b"ERROR :Closing link: banned by a moderator"))
    assert await raw.closed()
    raw.close()
    # The server saw the user leave with the reason on one line.
    quit_event = await other.wait_for("quit", lambda e: str(e.source).startswith("eve!"))
    assert "injected" in quit_event.arguments[0]
    await other.sync()
    assert other.texts("pubmsg") == []


# -- bad input -------------------------------------------------------------------


def bad_lines(guard: ChatGuard, problem: str, action: str) -> float:
    value = guard.metrics.registry.get_sample_value(
        "chatguard_irc_bad_lines_total", {"origin": "client", "problem": problem, "action": action}
    )
    return 0.0 if value is None else value


async def test_long_lines_nul_and_bare_cr_are_refused_and_the_session_goes_on(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd, hard_line_bytes=9000)
    host, port = address(guard)
    raw = await RawIrc.connect(host, port, "gil")
    hal = await irc_user(host, port, "hal")
    await raw.send(b"PRIVMSG hal :" + b"a" * 600)
    await raw.expect(lambda line: b"line too long" in line)
    # Far over the hard limit: never buffered whole, refused, session intact.
    await raw.send_bytes(b"PRIVMSG hal :" + b"b" * 50_000 + b"\r\n")
    await raw.send(b"PRIVMSG hal :with\0nul", b"PRIVMSG hal :hi\rPRIVMSG hal :smuggled")
    await eventually(lambda: bad_lines(guard, "bad_byte", "refuse") == 2)
    assert bad_lines(guard, "too_long", "refuse") == 2
    await raw.send(b"PRIVMSG hal :still here")
    await hal.wait_for("privmsg", lambda e: e.arguments == ["still here"])
    assert hal.texts("privmsg") == ["still here"]
    raw.close()


async def test_long_lines_pass_when_configured(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(
        make_guard, ngircd, max_line_bytes=100, on_long_line="pass", on_bad_byte="pass"
    )
    host, port = address(guard)
    ida = await irc_user(host, port, "ida")
    jon = await irc_user(host, port, "jon")
    text = "c" * 150
    ida.connection.privmsg("jon", text)
    await jon.wait_for("privmsg", lambda e: e.arguments == [text])
    assert bad_lines(guard, "too_long", "pass") == 1


async def test_one_client_flooding_garbage_does_not_disturb_another(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    kim = await irc_user(host, port, "kim", join="#calm")
    lou = await irc_user(host, port, "lou", join="#calm")
    garbage = await RawIrc.connect(host, port)
    await garbage.send_bytes(bytes(range(256)) * 40 + b"\n" + b"\xff\xfe :::: @@@ \r\n" * 50)
    kim.connection.privmsg("#calm", "all good")
    await lou.wait_for("pubmsg", lambda e: e.arguments == ["all good"])
    garbage.close()


async def test_latin1_text_crosses_byte_for_byte(make_guard: GuardFactory, ngircd: Ngircd) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    sender = await RawIrc.connect(host, port, "max")
    receiver = await RawIrc.connect(host, port, "ned")
    await sender.send(b"PRIVMSG ned :caf\xe9 cr\xe8me")
    line = await receiver.expect(lambda line: b"PRIVMSG ned" in line)
    assert line.endswith(b":caf\xe9 cr\xe8me")
    sender.close()
    receiver.close()


# -- limits and TLS ----------------------------------------------------------------


async def test_connections_over_the_limit_get_an_irc_error(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await make_guard(
        "ws://127.0.0.1:9",
        codec={"type": "irc"},
        irc=irc_settings(ngircd),
        limits={"max_connections": 1},
    )
    host, port = address(guard)
    await irc_user(host, port, "oli")
    refused = await RawIrc.connect(host, port)
    await refused.expect(lambda line: line == b"ERROR :Closing link: too many connections")
    assert await refused.closed()
    refused.close()
    sample = guard.metrics.registry.get_sample_value
    assert sample("chatguard_connections_refused_total", {"reason": "limit"}) == 1


async def test_tls_toward_clients_with_the_configured_certificate(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory, tmp_path: Path
) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    guard = await irc_guard(make_guard, ngircd, listen={"tls_cert": str(cert), "tls_key": str(key)})
    host, port = address(guard)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    pia = await irc_user(host, port, "pia", tls=context)
    pia.connection.privmsg("pia", "over tls")
    await pia.wait_for("privmsg", lambda e: e.arguments == ["over tls"])
    plain = await RawIrc.connect(host, port)
    await plain.send(b"NICK quin", b"USER quin 0 * :q")
    assert await plain.closed()
    assert not any(b" 001 " in line for line in plain.lines)
    plain.close()


async def test_the_service_name_cannot_be_taken(make_guard: GuardFactory, ngircd: Ngircd) -> None:
    guard = await irc_guard(make_guard, ngircd)
    raw = await RawIrc.connect(*address(guard))
    await raw.send(b"NICK ChatGuard", b"USER x 0 * :x")
    await raw.expect(lambda line: b" 432 * ChatGuard " in line)
    await raw.send(b"NICK notguard")
    await raw.expect(lambda line: b" 001 notguard " in line)
    raw.close()


async def test_a_proxy_header_names_the_client_address(
    make_guard: GuardFactory, ngircd: Ngircd
) -> None:
    guard = await irc_guard(make_guard, ngircd, listen={"proxy_protocol": True})
    host, port = address(guard)
    raw = await RawIrc.connect(host, port)
    await raw.send(b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 6667", b"NICK rae", b"USER r 0 * :r")
    await raw.expect(lambda line: b" 001 rae " in line)
    assert guard.irc_relay is not None
    (session,) = guard.irc_relay.sessions
    assert session.context.peer == "203.0.113.7"
    raw.close()
    # Without the header, the connection is refused before reaching the server.
    bare = await RawIrc.connect(host, port)
    await bare.send(b"NICK sam", b"USER s 0 * :s")
    await bare.expect(lambda line: line == b"ERROR :Closing link: expected a PROXY header")
    assert await bare.closed()
    bare.close()


async def test_idle_sessions_are_closed_and_stop_drains(
    make_guard: GuardFactory, ngircd: Ngircd
) -> None:
    guard = await make_guard(
        "ws://127.0.0.1:9",
        codec={"type": "irc"},
        irc=irc_settings(ngircd),
        limits={"idle_timeout": 0.4},
    )
    host, port = address(guard)
    idle = await RawIrc.connect(host, port, "tom")
    await idle.expect(lambda line: line.startswith(b"ERROR :Closing link: idle timeout"), 5)
    assert await idle.closed()
    idle.close()
    busy = await RawIrc.connect(host, port, "uma")
    assert guard.irc_relay is not None
    assert await guard.irc_relay.stop(2.0)
    await busy.expect(lambda line: line == b"ERROR :Closing link: server shutting down")
    assert await busy.closed()
    busy.close()
    sample = guard.metrics.registry.get_sample_value
    assert sample("chatguard_session_closes_total", {"cause": "idle"}) == 1
    assert sample("chatguard_session_closes_total", {"cause": "drain"}) == 1


def test_the_example_configuration_loads() -> None:
    from chatguard import config

    cfg = config.load(ROOT / "examples" / "irc" / "chatguard.yaml", env={})
    assert cfg.codec.type == "irc"
    assert cfg.irc.upstream.port == 6668
    assert (ROOT / cfg.policy.directory).is_dir()


async def test_tls_to_the_server_verifies_its_certificate(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    trusted = await irc_guard(
        make_guard,
        ngircd,
        upstream={
            "port": ngircd.tls_port,
            "tls": True,
            "tls_ca_file": str(ngircd.cert),
            "tls_server_name": "localhost",
        },
    )
    vic = await irc_user(*address(trusted), "vic")
    vic.connection.privmsg("vic", "through tls")
    await vic.wait_for("privmsg", lambda e: e.arguments == ["through tls"])
    # A certificate nobody vouches for: the client is told, nothing is relayed.
    untrusted = await irc_guard(make_guard, ngircd, upstream={"port": ngircd.tls_port, "tls": True})
    raw = await RawIrc.connect(*address(untrusted))
    await raw.expect(lambda line: line == b"ERROR :Closing link: upstream unavailable")
    assert await raw.closed()
    raw.close()
    sample = untrusted.metrics.registry.get_sample_value
    assert sample("chatguard_upstream_connect_failures_total", {"reason": "refused"}) == 1


async def test_readiness_checks_the_irc_server(make_guard: GuardFactory, ngircd: Ngircd) -> None:
    import json

    import aiohttp

    up = await irc_guard(make_guard, ngircd)
    down = await irc_guard(make_guard, ngircd, upstream={"port": free_port()})
    async with aiohttp.ClientSession() as http:
        for guard, status, ready in ((up, 200, True), (down, 503, False)):
            async with http.get(guard.admin_url + "/readyz") as response:
                assert response.status == status
                assert json.loads(await response.text())["checks"]["upstream"] is ready


async def test_a_client_that_stops_reading_holds_only_a_bounded_buffer(
    make_guard: GuardFactory,
) -> None:
    # A flooding server (ngIRCd throttles its own clients, so it cannot flood
    # fast enough to show this): it writes as fast as the sidecar reads.
    written = 0
    stalled = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        writer.write(b":flood.test 001 sleepy :Welcome\r\n")
        line = b":bob!b@h PRIVMSG sleepy :" + b"z" * 400 + b"\r\n"
        with contextlib.suppress(ConnectionError):
            for _ in range(100_000):
                writer.write(line)
                try:
                    async with asyncio.timeout(0.5):
                        await writer.drain()
                except TimeoutError:
                    stalled.set()  # the sidecar stopped reading from us
                    await writer.drain()
                written += len(line)
        writer.close()

    server = await asyncio.start_server(flood, "127.0.0.1", 0)
    flood_port = server.sockets[0].getsockname()[1]
    guard = await make_guard(
        "ws://127.0.0.1:9",
        codec={"type": "irc"},
        irc={"upstream": {"port": flood_port}, "listen": {"port": 0}},
        limits={"write_buffer_bytes": 4096},
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(address(guard))
    sock.setblocking(False)
    _, writer = await asyncio.open_connection(sock=sock)
    writer.transport.pause_reading()  # and never reads again
    assert guard.irc_relay is not None
    relay = guard.irc_relay
    await eventually(lambda: len(relay.sessions) == 1)
    (session,) = relay.sessions
    leg = session.legs[Side.CLIENT]
    assert isinstance(leg, TcpLineLeg)
    # Small kernel buffers on the way to the sleeper, so that they fill long
    # before the flood ends (loopback buffers otherwise grow to megabytes).
    leg.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await asyncio.wait_for(stalled.wait(), unit(10))
    # The sidecar holds at most its write buffer plus one line toward the
    # sleeper, and stopped reading from the server: the rest waits there.
    assert leg.writer.transport.get_write_buffer_size() <= 4096 + 512
    assert written < 100_000 * 427
    writer.close()
    server.close()


@pytest.mark.parametrize(
    ("header", "source"),
    [
        (b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 6667", "203.0.113.7"),
        (b"PROXY TCP6 2001:db8::1 2001:db8::2 51000 6667", "2001:db8::1"),
        (b"PROXY UNKNOWN", ""),
        (b"PROXY TCP4 203.0.113.7", None),
        (b"NICK amy", None),
        (b"", None),
    ],
)
def test_proxy_v1_headers(header: bytes, source: str | None) -> None:
    assert parse_proxy_v1(header) == source


async def test_a_client_that_hangs_up_leaves_the_server_at_once(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    host, port = address(guard)
    raw = await RawIrc.connect(host, port, "wes")
    await raw.send(b"JOIN #hangup")
    await raw.expect(lambda line: b" JOIN " in line)
    watcher = await irc_user(host, port, "xia", join="#hangup")
    raw.close()  # no QUIT: the socket just closes
    # The end is passed on at once (half-close), not after the sidecar's
    # linger for late server lines.
    await watcher.wait_for("quit", lambda e: str(e.source).startswith("wes!"), within=LINGER / 2)
