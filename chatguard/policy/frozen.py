"""Quicker construction of the frozen, slotted dataclasses built for every message.

What it owns: ``quick_init``, a class decorator that gives a frozen, slotted
dataclass a faster ``__init__``. The ``__init__`` that ``dataclasses``
writes for a frozen class stores each field with
``object.__setattr__(self, "name", value)``, which finds the field's slot by
its name again for every field of every instance: about 70 ns a field. The
engine builds several such records for every chat message (the matches,
the assessment, the planned actions), so this is a measurable part of its
time (``docs/performance.md``). The records built most often (the
conversation state and its parts, the normalised text, the observation, the
message) are no longer dataclasses at all: they are plain classes that the
compiled build makes native (``state.py``, invariant 1). The ``__init__``
written here stores each field through its slot's descriptor, taken once
when the class is decorated: the same parameters in the same order, the same
defaults and default factories, about half the time.

Invariants: instances are the same in every way (fields, equality, hash,
``repr``, ``dataclasses.replace``, pickling); only how ``__init__`` stores
the fields differs. Applied only to a frozen, slotted dataclass whose fields
are all ordinary ``__init__`` parameters (no ``__post_init__``, no
``InitVar``, no keyword-only or ``init=False`` field): anything else is
refused with ``TypeError`` when the module defining the class is imported.

``record_repr`` shows such a plain-class record as a dataclass would.

Never: decorate a class that is not frozen (a mutable dataclass's own
``__init__`` is already quick), or change what a class accepts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """``cls`` with an ``__init__`` that stores its fields through their slots.

    Apply it above ``@dataclass(frozen=True, slots=True)``.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init needs a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init cannot run __post_init__")
    # Names in the generated code: every one of them is a parameter or one of
    # these prefixed names, so no field name can shadow another.
    env: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    parameters: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init needs plain init fields")
        name = f.name
        env[f"_set_{name}"] = cls.__dict__[name].__set__  # the slot's descriptor
        value = name
        if f.default is not dataclasses.MISSING:
            env[f"_default_{name}"] = f.default
            parameters.append(f"{name}=_default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_factory_{name}"] = f.default_factory
            parameters.append(f"{name}=_MISSING")
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
        else:
            parameters.append(name)
        body.append(f"    _set_{name}(__dataclass_self__, {value})")
    source = f"def __init__(__dataclass_self__, {', '.join(parameters)}):\n"
    source += "\n".join(body or ["    pass"]) + "\n"
    exec(source, env)  # as dataclasses itself writes __init__
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    type.__setattr__(cls, "__init__", init)
    return cls


def record_repr(record: object, names: tuple[str, ...], values: tuple[object, ...]) -> str:
    """``Name(field=value, ...)``, as a dataclass shows itself: for the
    records that are plain classes (``state.py``, invariant 1)."""
    inner = ", ".join(f"{name}={value!r}" for name, value in zip(names, values, strict=True))
    return f"{type(record).__name__}({inner})"
