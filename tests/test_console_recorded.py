"""The flagged messages kept in memory, shown on the case page without an evidence log."""

from __future__ import annotations

from chatguard.console.recorded import RecordedConversations
from chatguard.events import ChatEvent, EventKind, Side
from chatguard.policy.model import Assessment, Match, Signal
from chatguard.steps.handoff import CaptureRequest, RecordingSink


def capture(
    at: float, conversation: str, sender: str, text: str, *matches: Match
) -> CaptureRequest:
    event = ChatEvent(EventKind.DIRECT, Side.CLIENT, "{}", sender, None, ("amy",), text)
    assessment = Assessment(conversation, 8.0, (), tuple(matches), ())
    return CaptureRequest(at, conversation, "s-1", sender, "{}", assessment, event=event)


async def test_flagged_messages_of_the_conversation_with_their_spans() -> None:
    sink = RecordingSink()
    conv = "dm:amy:bob"
    await sink.capture(
        capture(
            2.0,
            conv,
            "bob",
            "are your parents home?",
            Match("en.risk.home", Signal.RISK_CHECK, 2.0, ((4, 21),)),
            Match("en.shadow", Signal.SECRECY, 1.0, ((0, 3),), shadow=True),
        )
    )
    await sink.capture(capture(1.0, conv, "bob", "you seem mature"))
    await sink.capture(capture(3.0, "room:lobby", "eve", "hello"))
    messages = await RecordedConversations(sink).excerpt(conv, ())
    assert [(m.at, m.sender, m.text) for m in messages] == [
        (1.0, "bob", "you seem mature"),
        (2.0, "bob", "are your parents home?"),
    ]
    assert messages[1].spans == ((4, 21, "en.risk.home"),)  # shadow matches are not shown
    assert all(m.flagged for m in messages)


async def test_the_excerpt_is_bounded() -> None:
    sink = RecordingSink()
    for i in range(20):
        await sink.capture(capture(float(i), "dm:a:b", "a", f"m{i}"))
    messages = await RecordedConversations(sink, limit=5).excerpt("dm:a:b", ())
    assert [m.text for m in messages] == ["m15", "m16", "m17", "m18", "m19"]
