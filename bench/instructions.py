"""Instructions per message of the policy engine, counted by callgrind.

Timing on a shared machine moves with whatever else runs on it; the number
of machine instructions a message costs does not. This benchmark runs the
engine's workload (``bench.engine``: the same seeded messages, an adult
writing to a child in 50 conversations) under ``valgrind --tool=callgrind``
and reports instructions per message, for the working tree and, with
``--baseline REV``, for git revision ``REV`` beside it, with their ratio;
with ``--compiled``, for the working tree as the compiled build
(``chatguard.native``) beside it; with both, for ``REV`` and the working
tree both compiled.

How it counts. A worker process loads the pack, builds the matcher (from a
shared cache, filled by a first run outside callgrind), runs ``--warm``
messages so that lazily compiled regexes and memos are in place, and then
``n`` more. Each side runs twice,
with ``n = 0`` and ``n = --count``; the difference of the two totals over
``--count`` is the cost of one message, start-up excluded. Both runs of a
side are started together (two cores). Hash randomisation is fixed, so the
same tree gives the same count on every run.

An instruction is not a nanosecond: memory stalls and branch misses are not
counted, so the ratio of two counts approximates the ratio of two times.
Use it to compare code on a busy machine; use ``bench.engine`` for the
messages per second that a machine gives.

Run from the repository root:
``.venv/bin/python -m bench.instructions --baseline main~3`` (about 2
minutes per side; ``--stage`` picks ``normalise+scan``, ``engine`` or
``policy``, the pack's own policy, which is the default).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.engine import (
    _own_folders,
    _pack_arg,
    baseline_arguments,
    checkout,
    compiled_checkout,
    compiled_tree,
    messages,
    whole_engine,
    worker_env,
)

STAGES = ("normalise+scan", "engine", "policy")
_COLLECTED = re.compile(rb"Collected : (\d+)")


def _stage(name: str, pack: str, cache: Path) -> Callable[[str], object]:
    """One message through ``name`` with ``pack`` (a pack folder)."""
    from chatguard.policy.matcher import build_matcher
    from chatguard.policy.normalise import normalise
    from chatguard.policy.rules import load_policy

    policy = load_policy(Path(pack), cache_dir=cache)
    matcher = build_matcher(policy.rules, backend="hyperscan", cache_dir=cache)
    if name == "normalise+scan":
        return lambda text: matcher.scan(normalise(text))
    return whole_engine(matcher, policy if name == "policy" else None)


def run_worker(stage: str, pack: str, cache: Path, warm: int, count: int) -> None:
    texts = [t for _, t in messages(random.Random(2024), warm + count)]
    run = _stage(stage, pack, cache)
    for text in texts:
        run(text)


def _worker(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "bench.instructions", "--worker", *args]


def instructions(tree: Path, args: list[str]) -> int:
    """Instructions callgrind counts for one worker run from ``tree``."""
    env = {**worker_env(), "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/callgrind.out",
                *_worker(args),
            ],
            cwd=tree,
            env=env,
            capture_output=True,
            check=False,
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise SystemExit(f"callgrind run failed in {tree} ({done.returncode}):\n{tail}")
    return int(found.group(1))


def per_message(tree: Path, args: list[str], count: int) -> float:
    """Instructions per message: runs with no messages and with ``count``,
    after a run outside callgrind has filled the caches (compiling a pack
    under callgrind would take many minutes)."""
    subprocess.run(_worker([*args, "--count", "0"]), cwd=tree, env=worker_env(), check=True)
    with ThreadPoolExecutor(2) as pool:
        empty = pool.submit(instructions, tree, [*args, "--count", "0"])
        full = pool.submit(instructions, tree, [*args, "--count", str(count)])
        return (full.result() - empty.result()) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", default="policies", help="pack folders, comma-separated")
    parser.add_argument("--stage", choices=STAGES, default="policy", help="what one message runs")
    parser.add_argument("--count", type=int, default=2000, help="messages counted")
    parser.add_argument("--warm", type=int, default=1000, help="messages run before counting")
    baseline_arguments(parser, "count git revision REV beside")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="count the compiled build beside (needs cc); with --baseline, both sides compiled",
    )
    args = parser.parse_args()
    if args.worker:
        assert args.cache is not None
        run_worker(args.stage, args.packs, args.cache, args.warm, args.count)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.count < 1 or args.warm < 0:
        raise SystemExit("--count must be at least 1 and --warm at least 0")
    root = Path(__file__).resolve().parent.parent
    packs = args.packs.split(",")
    # Alone, the compiled copy reads the working tree's pack folders.
    own = [] if args.same_pack or not args.baseline else _own_folders(packs, root)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        trees = {"working tree": root}
        if args.baseline and args.compiled:  # both sides compiled
            trees = {
                args.baseline: compiled_checkout(args.baseline, Path(tmp) / "old", own),
                "working tree": compiled_tree(Path(tmp) / "new", own),
            }
        elif args.baseline:
            trees = {args.baseline: checkout(args.baseline, Path(tmp), own), **trees}
        elif args.compiled:
            trees["compiled"] = compiled_tree(Path(tmp))
        print(f"instructions per message, stage {args.stage!r}, {args.count:,} messages")
        for pack in packs:
            counted: dict[str, float] = {}
            for name, tree in trees.items():
                side = [*_pack_arg(pack, root, tree, own), "--stage", args.stage]
                side += ["--warm", str(args.warm), "--cache", cache]
                counted[name] = per_message(tree, side, args.count)
                print(f"  {pack:12} {name:24} {counted[name]:>12,.0f}", flush=True)
            if args.baseline:
                old, new = counted[args.baseline], counted["working tree"]
                print(f"  {pack:12} {'old / new':24} {old / new:>12.3f}x")
            elif args.compiled:
                pure, built_ = counted["working tree"], counted["compiled"]
                print(f"  {pack:12} {'pure / compiled':24} {pure / built_:>12.3f}x")


if __name__ == "__main__":
    main()
