"""Benchmark: how long a pack takes to load, cold and with the cache.

Loading a pack means reading every rule file, parsing and checking every
regex (``load_policy``; most of its time is the CPU-time safety probes of
``chatguard/policy/safety.py``) and building the matcher (``build_matcher``;
the Hyperscan database is compiled or read back). The sidecar keeps both
results in ``data_dir/cache``: the compiled database and the regex safety
verdicts (``chatguard/policy/safety_cache.py``).

Each run starts two fresh Python processes on the same new, empty cache
directory, so that nothing is shared in memory:

* ``cold``: the first start (an empty cache; both caches are filled);
* ``warm``: the second start of the same pack.

and, side by side in the same run, ``no cache``: a start with no cache
directory at all (what ``chatguard policy ...`` commands do). Prints, per
case and phase, the median over the runs of the CPU seconds and wall
seconds of that process, and the cold/warm ratio.

Run from the repository root: ``.venv/bin/python -m bench.policy_load``
(``--runs 5`` by default; ``--policy DIR`` for another pack).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
from pathlib import Path
from chatguard.policy.matcher import build_matcher
from chatguard.policy.rules import load_policy
policy_dir, cache = sys.argv[1], sys.argv[2] or None
cache_dir = Path(cache) if cache else None
t0, w0 = time.process_time(), time.perf_counter()
policy = load_policy(Path(policy_dir), cache_dir=cache_dir)
t1, w1 = time.process_time(), time.perf_counter()
build_matcher(policy.rules, cache_dir=cache_dir)
t2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({"load": [t1 - t0, w1 - w0], "matcher": [t2 - t1, w2 - w1],
                  "total": [t2 - t0, w2 - w0], "rules": len(policy.rules)}))
"""

TIMEOUT = 300  # seconds for one child, whatever the machine is doing


def child(policy: Path, cache: Path | None) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(policy), str(cache) if cache else ""],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    result: dict[str, list[float]] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--policy", default="policies")
    args = parser.parse_args()
    policy = Path(args.policy)
    samples: dict[str, list[dict[str, list[float]]]] = {"no cache": [], "cold": [], "warm": []}
    rules = 0
    for _ in range(max(1, args.runs)):
        with tempfile.TemporaryDirectory(prefix="chatguard-bench-") as tmp:
            samples["no cache"].append(child(policy, None))
            samples["cold"].append(child(policy, Path(tmp) / "cache"))
            warm = child(policy, Path(tmp) / "cache")
            samples["warm"].append(warm)
            rules = int(warm["rules"])  # type: ignore[call-overload]
    print(f"pack {policy} ({rules} rules), median of {args.runs} runs, seconds (CPU / wall)")
    print(f"{'case':<10}{'load_policy':>18}{'build_matcher':>18}{'total':>18}")
    medians: dict[str, dict[str, tuple[float, float]]] = {}
    for case, runs in samples.items():
        row = {
            phase: (
                statistics.median(r[phase][0] for r in runs),
                statistics.median(r[phase][1] for r in runs),
            )
            for phase in ("load", "matcher", "total")
        }
        medians[case] = row
        cells = "".join(f"{c:>9.2f} /{w:>6.2f}" for c, w in row.values())
        print(f"{case:<10}{cells}")
    cold, warm = medians["cold"]["total"][0], medians["warm"]["total"][0]
    print(f"cold / warm (CPU): {cold / warm:.1f}x")


if __name__ == "__main__":
    main()
