"""The IRC relay over TCP in front of a real ngIRCd, with real IRC clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatguard.app import ChatGuard
from chatguard.events import Identity
from chatguard.relay.delivery import Directive
from tests.support.ircclient import RawIrc, UserFactory
from tests.support.ngircd import Ngircd
from tests.support.relay import GuardFactory
from tests.support.timing import eventually

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


@pytest.fixture(scope="module")
def pack_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory per module, so the default pack is compiled once."""
    return tmp_path_factory.mktemp("irc-pack-data")


async def irc_guard(
    make_guard: GuardFactory, server: Ngircd, *, pack: Path | None = None, **irc: Any
) -> ChatGuard:
    extra: dict[str, Any] = {"codec": {"type": "irc"}, "irc": irc_settings(server, **irc)}
    if pack is not None:
        # The default policies/ pack and banner catalogue, as shipped.
        extra["policy"] = {"directory": str(ROOT / "policies"), "watch": False}
        extra["banners"] = {"directory": str(ROOT / "banners")}
        extra["data_dir"] = str(pack)
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
    assert guard.metrics.registry.get_sample_value(
        "chatguard_connections_open"
    ) == pytest.approx(2)


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
        lambda: session.context.identity is not None
        and session.context.identity.user_id == "cleo2"
    )
    assert session.context.peer == "127.0.0.1"


# -- policy through the relay -----------------------------------------------------


async def test_off_platform_warning_reaches_the_minor(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory, pack_data: Path
) -> None:
    guard = await irc_guard(make_guard, ngircd, pack=pack_data)
    await minor(guard, "kid1")
    host, port = address(guard)
    kid = await irc_user(host, port, "kid1")
    stranger = await irc_user(host, port, "stranger1")
    stranger.connection.privmsg("kid1", "add me on snapchat")
    banner = await kid.wait_for(
        "privnotice", lambda e: str(e.source).startswith("ChatGuard!")
    )
    assert banner.arguments[0].startswith("[ChatGuard] ")
    # The message itself still arrives (a banner is a speed bump, not a block).
    await kid.wait_for("privmsg", lambda e: e.arguments == ["add me on snapchat"])
    # Asking the child for pictures is captured as evidence, with the raw
    # line exactly as it crossed the wire.
    stranger.connection.privmsg("kid1", "send me a pic")
    await kid.wait_for("privmsg", lambda e: e.arguments == ["send me a pic"])
    await eventually(lambda: bool(guard.recorded.captures))
    capture = guard.recorded.captures[-1]
    assert capture.frame == b"PRIVMSG kid1 :send me a pic"
    assert capture.sender == "stranger1"
    assert capture.conversation == "dm:kid1:stranger1"


async def test_a_hold_waits_for_send_to_the_service_name(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory, pack_data: Path
) -> None:
    guard = await irc_guard(make_guard, ngircd, pack=pack_data)
    await minor(guard, "kid2")
    host, port = address(guard)
    kid = await irc_user(host, port, "kid2")
    friend = await irc_user(host, port, "friend2")
    kid.connection.privmsg("friend2", "its 555 867 5309")
    prompt = await kid.wait_for("privnotice", lambda e: str(e.source).startswith("ChatGuard!"))
    assert "/msg ChatGuard send" in prompt.arguments[0]
    await friend.sync()
    assert friend.texts("privmsg") == []
    kid.connection.privmsg("ChatGuard", "send")
    await friend.wait_for("privmsg", lambda e: e.arguments == ["its 555 867 5309"])
    # The command itself never reached the server: no "No such nick" for it.
    await kid.sync()
    assert kid.of("nosuchnick") == []
    assert metric(guard, "chatguard_holds_total") == 0  # no such unlabelled sample
    held = guard.metrics.registry.get_sample_value("chatguard_holds_total", {"outcome": "held"})
    sent = guard.metrics.registry.get_sample_value("chatguard_holds_total", {"outcome": "sent"})
    assert (held, sent) == (1, 1)


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
    other = await irc_user(host, port, "fay")
    reached = await guard.deliveries.apply(
        Directive("eve", close_code=4003, close_reason="banned by a moderator").to_json()
    )
    assert reached == 1
    await raw.expect(lambda line: line == b"ERROR :Closing link: banned by a moderator")
    assert await raw.closed()
    raw.close()
    # The other user's session goes on.
    await other.sync()
