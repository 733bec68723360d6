"""A small set of signal-model examples (image requests, meetings, ordinary
chat) in the examples file format, for training tests."""

from __future__ import annotations

from pathlib import Path

IMAGES = [
    "send me a pic",
    "send a photo of u",
    "can i get a selfie",
    "show me a pic of ur face",
    "pic of you pls",
    "take a photo for me",
    "send me a selfie rn",
    "a pic of u in ur uniform",
    "need a photo of you first",
    "send one more pic",
    "selfie pls",
    "photo of u?",
]
MEETINGS = [
    "lets meet at the park",
    "i can pick u up after school",
    "meet me behind the shop",
    "come over to mine saturday",
    "i'll drive to your town",
    "meet up this weekend?",
    "i pick you up at 6",
    "come meet me alone",
    "we could meet at the mall",
    "i'll come get u from the station",
    "meet me at the bus stop",
    "lets meet irl",
]
NONE = [
    "the park was closed",
    "the bus was late",
    "my phone camera broke",
    "school starts at 8",
    "what time is the match",
    "i love this song",
    "the shop sells pizza",
    "my cat is asleep",
    "good game everyone",
    "see the new trailer?",
    "homework is due friday",
    "lol same",
    "pic of the cat",
    "the mall is huge",
    "my mum drove me",
    "that level was hard",
]


def quoted(items: list[str]) -> str:
    return "".join(f'    - "{t}"\n' for t in items)


def write(directory: Path, name: str = "en.yaml", extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        "language: en\nexamples:\n"
        f"  image_request:\n{quoted(IMAGES)}"
        f"  meeting:\n{quoted(MEETINGS)}"
        f"  none:\n{quoted(NONE)}"
        "  multi:\n"
        '    - {text: "send a pic then meet me", signals: [image_request, meeting]}\n' + extra,
        encoding="utf-8",
    )
    return path
