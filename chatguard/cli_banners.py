"""``chatguard banners ...``: lint a catalogue, report what banners achieved.

Output shapes with ``--json`` are a contract (other tools read them):

* ``banners lint``: ``{"ok", "banners", "problems": [{"file", "line",
  "message"}]}``.
* ``banners report``: ``BannerReport.to_json()`` (``effectiveness.py``):
  ``{"since", "skipped_lines", "banners": [...], "differences": [...]}``.

Exit codes: 0 success; 1 the catalogue (or pack) has problems, or the event
files cannot be read; 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .banner_files import load_catalogue
from .banner_lint import check_against_pack
from .banners import BannerError
from .effectiveness import report
from .policy.rules import PolicyError, load_policy

DEFAULT_BANNERS_DIR = "banners"
_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$")
_RELATIVE = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _problem(line: str) -> dict[str, Any]:
    m = _PROBLEM.match(line)
    if m is None:
        return {"file": None, "line": None, "message": line}
    return {"file": m["file"], "line": int(m["line"]), "message": m["message"]}


def cmd_lint(args: argparse.Namespace) -> int:
    problems: list[str] = []
    count = 0
    try:
        catalogue = load_catalogue(Path(args.directory))
        count = len(catalogue.banners)
    except BannerError as exc:
        problems.extend(str(exc).splitlines())
        catalogue = None
    if args.policy and catalogue is not None:
        try:
            problems.extend(check_against_pack(catalogue, load_policy(Path(args.policy))))
        except PolicyError as exc:
            problems.extend(str(exc).splitlines())
    if args.json:
        print(
            json.dumps(
                {"ok": not problems, "banners": count, "problems": [_problem(p) for p in problems]},
                ensure_ascii=False,
            )
        )
    else:
        for line in problems:
            print(line, file=sys.stderr)
        if not problems:
            print(f"{args.directory}: {count} banners, ok")
    return 1 if problems else 0


def parse_since(text: str, now: float) -> float:
    """``7d``, ``24h``, ``30m`` before now, or an ISO 8601 date or time (UTC if no zone)."""
    m = _RELATIVE.match(text.strip())
    if m is not None:
        return now - int(m["n"]) * _UNITS[m["unit"]]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use 7d, 24h, 30m or an ISO date like 2026-03-01"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def cmd_report(args: argparse.Namespace) -> int:
    directory = Path(args.data_dir) / "banners"
    if not directory.is_dir():
        message = f"chatguard: no banner event log in {directory}"
        if args.json:
            print(json.dumps({"ok": False, "error": message}))
        print(message, file=sys.stderr)
        return 1
    result = report([directory], args.since)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(result.to_text())
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    banners = sub.add_parser("banners", help="lint the banner catalogue, report effectiveness")
    bsub = banners.add_subparsers(dest="banners_command", required=True)

    lint = bsub.add_parser("lint", help="check the catalogue (and against a policy pack)")
    lint.add_argument("directory", nargs="?", default=DEFAULT_BANNERS_DIR)
    lint.add_argument("--policy", default=None, help="policy pack to check the catalogue against")
    lint.add_argument("--json", action="store_true", help="machine-readable output")
    lint.set_defaults(func=cmd_lint)

    rep = bsub.add_parser("report", help="impressions and outcome rates per banner and variant")
    rep.add_argument("--data-dir", default="./data", help="the sidecar's data_dir (default ./data)")
    rep.add_argument(
        "--since",
        default=None,
        type=lambda text: parse_since(text, time.time()),
        help="7d, 24h, 30m, or an ISO date/time",
    )
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    rep.set_defaults(func=cmd_report)
