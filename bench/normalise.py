"""Benchmark for ``chatguard.policy.normalise``.

Times ``normalise`` over about 10,000 synthetic chat messages: mostly ordinary
English chat, some ordinary non-English text and emoji, and a share of
obfuscated messages (leetspeak, split words, look-alike letters, invisible
characters, fullwidth and math letters, repeated letters). The messages come
from a seeded generator, so every run times the same input.

Prints, for the whole mix and for each kind of message, the median over five
runs of the mean time per message, in microseconds of CPU time (and of wall
time), timed by ``bench/timing.py``.

Run from the repository root: ``python -m bench.normalise``.
"""

from __future__ import annotations

import random
import statistics

from bench.corpus import sample
from bench.timing import per_item
from chatguard.policy.normalise import normalise

RUNS = 5
MESSAGES = 10_000

ORDINARY = [
    "hey how are you doing today? want to play fortnite later on tonight",
    "lol that was so funny, did you see what happened in class today",
    "I'm 13 and in 8th grade, my birthday is in May",
    "call me at 555-1234 after 2 pm ok?",
    "can you lend me $20 for the game, I'll pay you back on friday",
    "my mom says I have to finish my homework first, brb",
    "gg that match was insane, you carried the whole team",
    "what time is practice tomorrow? coach said 4:30 but idk",
    "Did you finish the science project? It's due on Monday!!",
    "omg I love that song, it's been stuck in my head all week",
    "ok see you at school tomorrow, don't forget your jersey",
    "my username is cool_gamer_2011, add me on the server",
]
OTHER = [
    "Cześć! Jak się masz? Wyślesz mi zdjęcie z wycieczki?",
    "Hallo, wie geht's? Die Straße ist heute gesperrt.",
    "Привет, как дела? Во сколько встречаемся завтра?",
    "Καλημέρα, τι κάνεις; Θα παίξουμε αργότερα;",
    "¿Cuántos años tienes? Yo tengo doce años.",
    "haha that's hilarious 😂😂 see you tomorrow 👋",
    "happy birthday!! 🎉🎂 have a great day 👩\u200d👩\u200d👧",
]
OBFUSCATED = [
    "s3nd m3 s0me p1cs of y0u pls",
    "add me on s.n.a.p.c.h.a.t it's more private",
    "do you have s n a p? lets talk there",
    "wanna see my n00dz? send yours first",
    "you're sooooo pretty, pleeease send a photo",
    "don't tell your p\u0430rents about us, ok? our s\u0435cret",
    "let's talk on sn\u200bap\u200bchat instead",
    "ｓｅｎｄ ｍｅ ａ ｐｉｃ",
    "what's your 𝐬𝐧𝐚𝐩 name",
    "send 📸 and I'll send 💰 🤫",
    "ꜱᴇɴᴅ ɴᴜᴅᴇꜱ",
    "wanna have ѕех? nobody will know",
]
MIX: list[tuple[str, list[str], float]] = [
    ("ordinary", ORDINARY, 0.75),
    ("other", OTHER, 0.10),
    ("obfuscated", OBFUSCATED, 0.15),
]


def messages(rng: random.Random) -> list[tuple[str, str]]:
    """(kind, message) pairs; a random suffix keeps messages distinct."""
    return sample(rng, MIX, MESSAGES, ["ok", "lol", "haha", "yes", "no", "idk"])


def main() -> None:
    data = messages(random.Random(2024))
    every = [text for _, text in data]
    mean_len = statistics.mean(len(text) for text in every)
    print(f"{len(every)} messages, mean length {mean_len:.0f} characters")
    print(f"{'':12} {'cpu':>6}   {'wall':>6}")
    timing = per_item(every, normalise, RUNS)
    print(f"all          {timing.cpu_us:6.2f}   {timing.wall_us:6.2f} µs/message")
    for kind, _, _ in MIX:
        batch = [text for k, text in data if k == kind]
        timing = per_item(batch, normalise, RUNS)
        print(
            f"{kind:12} {timing.cpu_us:6.2f}   {timing.wall_us:6.2f} µs/message"
            f" ({len(batch)} messages)"
        )


if __name__ == "__main__":
    main()
