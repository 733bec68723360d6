"""Tests for ``chatguard.policy.frozen``: a class with ``quick_init`` is built
exactly as its plain dataclass twin, and anything ``quick_init`` cannot
build the same way is refused."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from chatguard.policy.frozen import quick_init, record_repr
from chatguard.policy.model import Match, Signal


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str
    c: float = 1.5
    d: dict[str, int] = field(default_factory=dict)
    e: tuple[int, ...] = field(default=(), compare=False)


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    a: int
    b: str
    c: float = 1.5
    d: dict[str, int] = field(default_factory=dict)
    e: tuple[int, ...] = field(default=(), compare=False)


def fields_of(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


CALLS: list[tuple[tuple[object, ...], dict[str, object]]] = [
    ((1, "x"), {}),
    ((1, "x", 2.5), {}),
    ((1, "x", 2.5, {"k": 1}, (3,)), {}),
    ((1,), {"b": "y", "e": (4, 5)}),
    ((), {"a": 2, "b": "z", "d": {"q": 2}}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_builds_what_the_dataclass_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    assert fields_of(Quick(*args, **kwargs)) == fields_of(Plain(*args, **kwargs))  # type: ignore[arg-type]


def test_refuses_what_the_dataclass_refuses() -> None:
    for call in (lambda: Quick(), lambda: Quick(1, "x", b="y"), lambda: Quick(1, "x", z=3)):  # type: ignore[call-arg, misc]
        with pytest.raises(TypeError):
            call()


def test_instances_stay_frozen_and_behave_alike() -> None:
    q = Quick(1, "x", d={"k": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.a = 2  # type: ignore[misc]
    assert q == Quick(1, "x", d={"k": 1}, e=(9,))  # e is not compared
    assert repr(q).startswith("Quick(a=1, b='x'")
    assert dataclasses.replace(q, c=3.0) == Quick(1, "x", 3.0, {"k": 1})
    assert pickle.loads(pickle.dumps(q)) == q
    assert Quick(1, "x").d is not Quick(1, "x").d  # a fresh default each time


def test_the_records_the_engine_builds_are_unchanged() -> None:
    m = Match("r", Signal.SEXUAL, 2.0, ((0, 3),))
    assert (m.shadow, m.spans) == (False, ((0, 3),))


def test_refuses_a_class_it_cannot_build_the_same_way() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class Derived:
        a: int
        b: int = field(init=False, default=0)

    class NotADataclass:
        pass

    for cls in (Mutable, NoSlots, PostInit, KeywordOnly, Derived, NotADataclass):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)


def test_record_repr_shows_a_plain_record_as_a_dataclass_would() -> None:
    class Point:
        pass

    assert record_repr(Point(), ("x", "label"), (1, "a")) == "Point(x=1, label='a')"
    with pytest.raises(ValueError, match="zip"):  # a name for every value
        record_repr(Point(), ("x",), (1, 2))
