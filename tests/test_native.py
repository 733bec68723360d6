"""The compiled build (chatguard/native.py): built from this checkout with the
real setup.py, mypyc and the C compiler, then run beside the pure source on
the evaluation set: every other file by default (about 15,000 messages), the
rest with ``-m slow`` (``make test-slow``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatguard.native import MODULES, build_copy, compiled

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "tests" / "eval"


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


@pytest.fixture(scope="module")
def compiled_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("compiled")
    try:
        return build_copy(ROOT, into)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"the compiled build failed:\n{exc.stdout}\n{exc.stderr}")


def test_a_development_checkout_runs_pure() -> None:
    # An extension built in place would shadow its edited .py (native.py, "Never").
    assert compiled() == []


def test_the_compiled_copy_runs_every_listed_module_compiled(compiled_tree: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from chatguard.native import compiled; print(*compiled())"],
        cwd=compiled_tree,
        env=_env(compiled_tree),
        check=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == list(MODULES)


def test_a_compiled_unit_works_out_its_lookahead_parts_once(compiled_tree: Path) -> None:
    # A cached_property of a compiled class is worked out again on every
    # read: what a confirmation reads per message is kept in attributes.
    script = (
        "from chatguard.policy.matcher import _Unit\n"
        "from chatguard.policy.model import Pattern, PatternKind\n"
        "p = Pattern(PatternKind.REGEX, 'x', r'^(?=.*\\bpay\\b).*?\\bor\\b')\n"
        "u = _Unit(0, p)\n"
        "print(u.looks() is not None and u.looks() is u.looks())\n"
    )
    assert _run(compiled_tree, script) == ["True"]


def test_a_compiled_unit_keeps_the_tree_its_work_bound_remembers(compiled_tree: Path) -> None:
    # The work bound's memo is keyed by the ids of the tree's nodes: a tree
    # parsed again on each read would reuse a freed tree's ids, and the memo
    # would answer for the wrong node (once a zip of an alternation's
    # branches with another's). The tree is parsed once and kept.
    script = (
        "from chatguard.policy.matcher import _Unit\n"
        "from chatguard.policy.model import Pattern, PatternKind\n"
        "p = Pattern(PatternKind.REGEX, 'x', r'\\b(?:a|bc|d) (?:e|f)\\b')\n"
        "u = _Unit(0, p)\n"
        "print(u.tree() is not None and u.tree() is u.tree())\n"
        "for n in range(1, 5000, 7):\n"
        "    u.untimed(n, 0.05)  # a wrong memo entry raised here\n"
        "print('bounded')\n"
    )
    assert _run(compiled_tree, script) == ["True", "bounded"]


def test_compiled_records_refuse_assignment(compiled_tree: Path) -> None:
    # Native classes: their Final attributes are read-only at run time too
    # (state.py, invariant 1; native.py, invariant 2); a Python class would
    # take the assignment.
    script = (
        "from chatguard.policy.engine import MessageContext\n"
        "from chatguard.policy.model import Where\n"
        "from chatguard.policy.normalise import normalise\n"
        "from chatguard.policy.risk import Observation\n"
        "from chatguard.policy.state import ConversationState, PairState, Participant\n"
        "for record, name in ((ConversationState(), 'risk'), (PairState(0), 'last'),\n"
        "                     (Participant(), 'last_seen'), (normalise('a'), 'folded'),\n"
        "                     (Observation('a', (), ()), 'sender'),\n"
        "                     (MessageContext('a', 'c', 'a', (), Where.ROOM), 'text')):\n"
        "    try:\n"
        "        setattr(record, name, 1)\n"
        "    except AttributeError:\n"
        "        print('refused')\n"
    )
    assert _run(compiled_tree, script) == ["refused"] * 6


def _run(tree: Path, script: str) -> list[str]:
    """The words ``script`` prints, run by the build in ``tree``."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tree,
        env=_env(tree),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.split()


@pytest.mark.parametrize("half", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_pure_and_compiled_decide_the_evaluation_set_alike(
    compiled_tree: Path, tmp_path: Path, half: int
) -> None:
    transcript = tmp_path / "half.jsonl"
    files = sorted(EVAL.glob("*.jsonl"))[half::2]
    text = "".join(path.read_text(encoding="utf-8") for path in files)
    transcript.write_text(text, encoding="utf-8")
    command = [
        sys.executable,
        *("-m", "chatguard", "policy", "replay", str(transcript)),
        *("--policy", str(ROOT / "policies"), "--json"),
    ]
    # Both at once: two cores, and the replay is most of this test's time.
    runs = {
        name: subprocess.Popen(command, cwd=tree, env=_env(tree), stdout=subprocess.PIPE, text=True)
        for name, tree in (("pure", ROOT), ("compiled", compiled_tree))
    }
    outputs = {name: run.communicate(timeout=600)[0] for name, run in runs.items()}
    assert all(run.returncode == 0 for run in runs.values())
    pure, native = outputs["pure"].splitlines(), outputs["compiled"].splitlines()
    assert len(pure) == sum(1 for line in text.splitlines() if line.strip())
    assert sum('"escalate"' in line for line in pure) > 250  # it decides something
    first = next((i for i, (a, b) in enumerate(zip(pure, native, strict=True)) if a != b), None)
    assert first is None, f"event {first}:\npure:     {pure[first]}\ncompiled: {native[first]}"
