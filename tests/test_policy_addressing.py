"""Narrowing a room message to the recipients it names."""

from __future__ import annotations

import pytest

from chatguard.policy.addressing import addressed, name_of
from chatguard.policy.engine import Engine, MessageContext
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import Policy, Rule, Signal, Where
from chatguard.policy.rules import regex_pattern
from chatguard.policy.state import ROOM_AUDIENCE

ROOM = ("zoe_p", "liam22", "ava.m", "max_k")


@pytest.mark.parametrize(
    ("user", "name"),
    [("zoe_p", "zoe"), ("liam22", "liam"), ("Ava.M", "ava"), ("max_k", None), ("12kid", None),
     ("xx", None), ("jo", None)],
)  # fmt: skip
def test_the_name_part_of_an_id(user: str, name: str | None) -> None:
    assert name_of(user) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cool, zoe u were really good at the last race", ("zoe_p",)),
        ("@liam22 ur so mature", ("liam22",)),
        ("Zoe and Ava, you two are the best", ("zoe_p", "ava.m")),
        ("you're all so mature", ROOM),  # names nobody
        ("zoe liam ava max_k hi all", ROOM),  # names everyone: a greeting
        ("max score today!", ROOM),  # an everyday word is never a name
        ("zoey is cute", ROOM),  # a name is a whole word
    ],
)
def test_a_room_message_is_addressed_to_the_recipients_it_names(
    text: str, expected: tuple[str, ...]
) -> None:
    assert addressed(text, ROOM) == expected


def test_direct_messages_and_empty_rooms_keep_their_recipients() -> None:
    assert addressed("zoe ur so mature", ("zoe_p",)) == ("zoe_p",)
    assert addressed("zoe ur so mature", ()) == ()


FLATTERY = Rule(
    id="t.flattery",
    description="flatters",
    signal=Signal.FLATTERY,
    languages=frozenset({"en"}),
    patterns=(regex_pattern(r"\bso mature\b"),),
    weight=1.0,
)


def test_a_child_singled_out_in_a_large_room_gets_a_pair_of_their_own() -> None:
    """Beyond ``max_fanout`` (8) recipients only known minors get a pair; a
    child the message names gets one too, and the rest of the room none."""
    members = (*(f"member{i}" for i in range(12)), "lily_b")
    policy = Policy((FLATTERY,), (), "t")
    engine = Engine(policy, build_matcher(policy.rules))
    msg = MessageContext("lily ur so mature", "c", "stranger", members, Where.ROOM)
    _, state = engine.assess(msg, None, 1.7e9)
    assert set(state.pairs) == {("stranger", "lily_b")}
    broadcast = MessageContext("ur all so mature", "c", "stranger", members, Where.ROOM)
    _, state = engine.assess(broadcast, None, 1.7e9)
    assert set(state.pairs) == {("stranger", ROOM_AUDIENCE)}
