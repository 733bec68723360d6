"""Two scripted bot users that keep the example chat lively for ``chatguard demo``.

"maya" (13, so the service sees a minor) and "sam" (34, an adult) connect to
the chat service, or to a ChatGuard sidecar in front of it, join the given
rooms and take turns saying the lines of ``SCRIPT``: friendly, public small
talk about a puzzle game, books and the weather, nothing personal.

Invariants:

* Each bot reads every frame sent to it, so the service never has to drop or
  close a bot for being slow.
* A dropped connection is retried with bounded, jittered exponential backoff
  (``BACKOFF_MIN`` .. ``BACKOFF_MAX`` seconds); a turn whose speaker is offline
  waits, so the conversation resumes where it stopped.
* All randomness comes from the ``random.Random`` passed in, so a seeded run
  makes the same choices. ``run_bots`` returns soon after ``stop`` is set,
  having closed its connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

BACKOFF_MIN = 0.2
BACKOFF_MAX = 5.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bot:
    name: str
    age: int


MAYA = Bot("maya", 13)
SAM = Bot("sam", 34)
BOTS = (MAYA, SAM)

#: (speaker, text) in the order they are said; the script loops.
SCRIPT: tuple[tuple[Bot, str], ...] = (
    (MAYA, "hi lobby! is anyone else stuck on the mirror puzzles?"),
    (SAM, "hey! level 12 took me ages, the mirrors are tricky"),
    (MAYA, "yes!! the light keeps bouncing the wrong way"),
    (SAM, "tip: start from the exit and work backwards"),
    (MAYA, "ooh that worked, thanks"),
    (SAM, "nice one. the next world has portals, it gets fun"),
    (MAYA, "it's raining here again, so more puzzle time"),
    (SAM, "same here, perfect weather for a good book too"),
    (MAYA, "i'm reading the one about the dragon librarian"),
    (SAM, "heard great things about that series"),
    (MAYA, "ok going to try level 13, wish me luck"),
    (SAM, "good luck, have fun!"),
)


async def run_bots(
    url: str,
    rooms: Sequence[str] = ("lobby",),
    *,
    stop: asyncio.Event,
    interval: float = 3.0,
    rng: random.Random | None = None,
) -> None:
    """Run both bots against ``url`` (``ws://host:port``) until ``stop`` is set.

    A line is said every ``interval`` seconds on average, in a room chosen at
    random among ``rooms``.
    """
    if not rooms:
        raise ValueError("the bots need at least one room")
    rng = rng or random.Random()
    links = {bot: _BotLink(url, bot, rooms, rng) for bot in BOTS}
    async with asyncio.TaskGroup() as group:
        for link in links.values():
            group.create_task(link.run(stop))
        group.create_task(_converse(links, rooms, stop, interval, rng))


class _BotLink:
    """One bot's connection, kept open until ``stop`` is set."""

    def __init__(self, url: str, bot: Bot, rooms: Sequence[str], rng: random.Random) -> None:
        self.bot = bot
        self.rooms = tuple(rooms)
        self.url = _sign_in_url(url, bot)
        self.rng = rng
        #: Set once the bot has joined its rooms; None while (re)connecting.
        self.ws: ClientConnection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        backoff = BACKOFF_MIN
        while not stop.is_set():
            try:
                async with connect(self.url, open_timeout=BACKOFF_MAX, proxy=None) as ws:
                    for room in self.rooms:
                        await ws.send(json.dumps({"type": "join", "room": room}))
                    self.ws = ws
                    backoff = BACKOFF_MIN
                    await self._read_until(ws, stop)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                _log.info("bot %s disconnected: %s", self.bot.name, exc)
            finally:
                self.ws = None
            delay = backoff * self.rng.uniform(0.5, 1.0)
            backoff = min(backoff * 2, BACKOFF_MAX)
            await _sleep_unless(stop, delay)

    async def say(self, room: str, text: str) -> bool:
        """Send one line; False when the bot is offline."""
        if self.ws is None:
            return False
        try:
            await self.ws.send(json.dumps({"type": "message", "room": room, "text": text}))
        except ConnectionClosed:
            return False
        return True

    async def _read_until(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        # Closing on stop ends the ``async for`` below cleanly.
        closer = asyncio.create_task(_close_on(stop, ws))
        try:
            async for frame in ws:
                _log.debug("bot %s received %r", self.bot.name, frame)
        finally:
            closer.cancel()
            await asyncio.wait([closer])


async def _converse(
    links: dict[Bot, _BotLink],
    rooms: Sequence[str],
    stop: asyncio.Event,
    interval: float,
    rng: random.Random,
) -> None:
    turn = 0
    while not await _sleep_unless(stop, interval * rng.uniform(0.5, 1.5)):
        speaker, text = SCRIPT[turn % len(SCRIPT)]
        if await links[speaker].say(rng.choice(rooms), text):
            turn += 1


async def _close_on(stop: asyncio.Event, ws: ClientConnection) -> None:
    await stop.wait()
    await ws.close()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; True when stopped."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True


def _sign_in_url(base: str, bot: Bot) -> str:
    if not base.startswith(("ws://", "wss://")):
        raise InvalidURI(base, "expected a ws:// or wss:// URL")
    base = base.rstrip("/")
    if not base.endswith("/ws"):
        base += "/ws"
    return f"{base}?{urlencode({'user': bot.name, 'age': bot.age})}"
