"""Benchmark for the wire codecs: time to decode one frame, per protocol.

Times, per frame on one thread, ``CodecSession.decode`` over a seeded mix of
frames as a chat session carries them, for:

* ``jsonchat``: the example mapping on the example chat service's frames;
* ``xmpp``: the XMPP codec on stanzas as Prosody and clients send them
  (chat and room messages, presence, iq, chat states), every frame parsed by
  the restricted, bounded parser;

with, side by side in the same run, the baselines each codec cannot go
below: ``json.loads`` of the same JSON frames, and a bare expat parse (no
handlers) of the same stanzas. Also times ``rewrite_text`` (redaction) of a
message and ``render`` of a banner.

Prints the median over five runs of the mean time per frame (µs) and the
frames per second that gives, and the ratio to the baseline.

Run from the repository root: ``.venv/bin/python -m bench.codecs``
(``--quick``: one run, 2,000 frames; ``--json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any
from xml.parsers import expat

from chatguard.codecs import JsonChatCodec
from chatguard.codecs.xmpp import XmppCodec
from chatguard.events import EventKind, Notice, Side

RUNS = 5
FRAMES = 20_000
WORDS = (
    "hi", "hello", "how", "are", "you", "doing", "today", "did", "see", "the", "game",
    "lol", "ok", "sure", "later",
)  # fmt: skip


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))


def xmpp_frames(rng: random.Random, n: int) -> list[tuple[str, Side]]:
    ns = "xmlns='jabber:client'"
    room = "lobby@conference.example"
    out: list[tuple[str, Side]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.35:
            out.append(
                (
                    f"<message {ns} to='bob@example' type='chat' id='m{i}'>"
                    f"<body>{_text(rng)}</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                    "</message>",
                    Side.CLIENT,
                )
            )
        elif r < 0.6:
            out.append(
                (
                    f"<message {ns} from='{room}/n{i % 50}' to='amy@example/web' type='groupchat'"
                    f" id='g{i}' xml:lang='en'><body>{_text(rng)}</body>"
                    "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='abc'/></message>",
                    Side.UPSTREAM,
                )
            )
        elif r < 0.75:
            out.append(
                (
                    f"<message {ns} to='bob@example' type='chat'>"
                    "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
                    Side.CLIENT,
                )
            )
        elif r < 0.9:
            out.append(
                (
                    f"<presence {ns} from='{room}/n{i % 50}' to='amy@example/web'>"
                    "<x xmlns='http://jabber.org/protocol/muc#user'>"
                    f"<item affiliation='none' role='participant' jid='u{i % 50}@example/r'/>"
                    "</x></presence>",
                    Side.UPSTREAM,
                )
            )
        else:
            out.append(
                (
                    f"<iq {ns} type='result' id='p{i}' to='amy@example/web' from='example'/>",
                    Side.UPSTREAM,
                )
            )
    return out


def json_frames(rng: random.Random, n: int) -> list[tuple[str, Side]]:
    out: list[tuple[str, Side]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.35:
            frame = {"type": "dm", "to": "bob", "text": _text(rng)}
            out.append((json.dumps(frame), Side.CLIENT))
        elif r < 0.6:
            frame = {"type": "message", "id": f"g{i}", "room": "lobby", "from": f"u{i % 50}",
                     "text": _text(rng), "ts": "2026-11-29T00:00:00Z"}  # fmt: skip
            out.append((json.dumps(frame), Side.UPSTREAM))
        elif r < 0.75:
            out.append((json.dumps({"type": "typing", "room": "lobby"}), Side.CLIENT))
        elif r < 0.9:
            out.append(
                (json.dumps({"type": "joined", "room": "lobby", "user": "u1"}), Side.UPSTREAM)
            )
        else:
            out.append((json.dumps({"type": "pong"}), Side.UPSTREAM))
    return out


def _expat(frame: str) -> None:
    parser = expat.ParserCreate("UTF-8", " ")
    parser.Parse(frame.encode(), True)


def _time(fn: Callable[[], Any], count: int) -> float:
    """Mean seconds per item of one timed run of ``fn`` (which handles ``count`` items)."""
    gc.collect()
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) / count


def measure(runs: int, frames: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    xmpp = xmpp_frames(rng, frames)
    jsons = json_frames(rng, frames)
    xs = XmppCodec().open(None)
    js = JsonChatCodec.from_name_or_path("example").open(None, use_welcome=False)
    message = xs.decode(xmpp[0][0], xmpp[0][1])
    if message is None or message.kind is not EventKind.DIRECT:
        raise SystemExit("the first XMPP frame should decode to a direct message")
    banner = Notice("banner", "Someone is asking you to chat somewhere else.", banner_id="b")

    cases: list[tuple[str, str, Callable[[], Any], int]] = [
        ("jsonchat", "baseline json.loads", lambda: [json.loads(f) for f, _ in jsons], frames),
        ("jsonchat", "decode", lambda: [js.decode(f, o) for f, o in jsons], frames),
        ("xmpp", "baseline expat parse", lambda: [_expat(f) for f, _ in xmpp], frames),
        ("xmpp", "decode", lambda: [xs.decode(f, o) for f, o in xmpp], frames),
        (
            "xmpp",
            "rewrite_text",
            lambda: [xs.rewrite_text(message, "█" * 5) for _ in range(frames // 4)],
            frames // 4,
        ),
        ("xmpp", "render", lambda: [xs.render(banner) for _ in range(frames // 4)], frames // 4),
    ]
    results = []
    for codec, what, fn, count in cases:
        samples = [_time(fn, count) for _ in range(runs)]
        results.append({"codec": codec, "what": what, "us": statistics.median(samples) * 1e6})
    for row in results:
        base = next(
            r for r in results if r["codec"] == row["codec"] and r["what"].startswith("baseline")
        )
        row["ratio"] = row["us"] / base["us"]
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of 2,000 frames")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    runs, frames = (1, 2_000) if args.quick else (RUNS, FRAMES)
    results = measure(runs, frames)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'codec':<10} {'what':<22} {'µs/frame':>9} {'frames/s':>10} {'× baseline':>11}")
    for r in results:
        print(
            f"{r['codec']:<10} {r['what']:<22} {r['us']:>9.2f} {1e6 / r['us']:>10,.0f}"
            f" {r['ratio']:>11.2f}"
        )


if __name__ == "__main__":
    main()
