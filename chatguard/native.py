"""The compiled build: which modules it compiles, whether this process runs it,
and how a source checkout is built that way.

The policy engine's per-message path (normalise, match, risk, the engine's
steps) is plain, strictly typed Python. A deployment may compile those
modules to C extensions with mypyc (``CHATGUARD_COMPILE=1 pip install .``,
which ``setup.py`` reads; the container image does so): the same source, about
1.4 times the messages per second on one core (docs/performance.md).

Invariants:

1. The pure and the compiled build decide every message identically: the
   same matches, risks and actions, byte for byte (tests/test_native.py
   replays the evaluation set through both: half of it by default, the
   other half with ``-m slow``).
2. ``MODULES`` lists only modules of the per-message path that compile
   unchanged; a module whose classes other code decorates or patches at
   import time (``frozen.quick_init``'s records in ``model``) stays pure.
   A dataclass in a compiled module stays a Python class, built and read
   through Python: the records compiled code builds or reads for every
   message are plain classes with ``Final`` attributes instead, which mypyc
   makes native classes (``state``'s records, ``normalise.Normalised``,
   ``risk.Observation``, ``engine.MessageContext``). Likewise the module
   constants those modules read for every message are ``Final``: compiled
   code reads a ``Final`` constant as a C static (a number or string one as
   its value), any other module-level name by a lookup in the module's
   dict. This file imports
   nothing from ChatGuard, so that ``setup.py`` can read it before anything
   is installed.
3. Nothing here is needed at run time: a pure install (the default, and every
   editable install used for development) works the same, only slower.

Never: compile in place in a development checkout (a stale extension next to
an edited ``.py`` would silently run the old code): ``build_copy`` builds a
copy.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

ENVIRONMENT = "CHATGUARD_COMPILE"  # "1": setup.py compiles MODULES

MODULES = (
    "chatguard.policy.normalise",
    "chatguard.policy.matcher",
    "chatguard.policy.lookahead_confirm",
    "chatguard.policy.quotations",
    "chatguard.policy.addressing",
    "chatguard.policy.signal_model",
    "chatguard.policy.state",
    "chatguard.policy.pending",
    "chatguard.policy.risk_formula",
    "chatguard.policy.risk",
    "chatguard.policy.engine",
)

# What a copy needs for ``setup.py build_ext``: the package, the build files
# and what pyproject.toml names (the readme, the examples' package).
SOURCES = ("chatguard", "examples", "setup.py", "pyproject.toml", "README.md")


def module_paths() -> list[str]:
    """``MODULES`` as source paths relative to the project root (for mypyc)."""
    return [name.replace(".", "/") + ".py" for name in MODULES]


def compiled() -> list[str]:
    """The modules of ``MODULES`` that this process runs compiled."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    out = []
    for name in MODULES:
        path = getattr(importlib.import_module(name), "__file__", None) or ""
        if path.endswith(suffixes):
            out.append(name)
    return out


def build_copy(root: Path, into: Path, *, timeout: float = 600.0) -> Path:
    """A compiled copy of the source checkout ``root`` under ``into``: its
    package with every module of ``MODULES`` built next to its source, ready
    to run with ``into`` first on ``sys.path``. Needs mypy and a C compiler;
    raises ``subprocess.CalledProcessError`` (with the build's output) when
    the build fails."""
    for name in SOURCES:
        source = root / name
        if source.is_dir():
            shutil.copytree(
                source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.so")
            )
        else:
            shutil.copy2(source, into / name)
    subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
        cwd=into,
        env={**os.environ, ENVIRONMENT: "1"},
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return into
