"""``chatguard policy ...``: test, explain and replay a policy pack.

Output shapes with ``--json`` are a contract (other tools read them):

* ``policy test``: one object ``{"ok", "rules", "examples", "failures": [...],
  "errors": [...]}``.
* ``policy explain``: one object (see ``replay.explain``).
* ``policy replay``: one object per input event ``{"index", "conversation",
  "risk", "signals", "actions"}``; with ``--summary``, one object per
  conversation ``{"conversation", "escalated", "first_escalation_index",
  "max_risk", "banners", "shadow_escalated"}``.
* Errors with ``--json``: ``{"ok": false, "errors": [...]}`` on stdout as well
  as the message on stderr.

Exit codes: 0 success; 1 the pack or transcript is invalid, or an example
failed; 2 usage errors (argparse).

Loading the default pack means judging every rule regex for safety and
compiling the Hyperscan database: tens of seconds, minutes on a slow or busy
machine, for every command. The commands therefore keep what those steps
produce in a cache directory (``--cache``; by default ``chatguard`` under
``$XDG_CACHE_HOME``, else ``~/.cache``) and a second run of the same pack
starts in a second or two. The cache can make a command faster, never give
a different result (``policy/safety_cache.py``, ``policy/matcher.py``:
entries are keyed by what they were made from, bounded, and an unwritable
directory is ignored); ``--no-cache`` neither reads nor writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from .policy import coverage
from .policy.engine import Engine
from .policy.evaluation import LabelError, evaluate, parse_labels
from .policy.matcher import Matcher, build_matcher
from .policy.model import Policy
from .policy.replay import check_examples, explain, replay, summarise
from .policy.rules import MODEL_DIR, MODEL_FILE, PolicyError, load_policy
from .policy.signal_model import dumps
from .policy.training import Settings as TrainSettings
from .policy.training import example_paths, examples_digest, read_examples, train
from .transcript import TranscriptError, TranscriptEvent, read

DEFAULT_POLICY_DIR = "policies"


def default_cache_dir() -> Path:
    """Where the commands keep regex verdicts and Hyperscan databases."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chatguard"


def _cache(args: argparse.Namespace) -> Path | None:
    if args.no_cache:
        return None
    return Path(args.cache) if args.cache else default_cache_dir()


def _load(directory: str, args: argparse.Namespace) -> tuple[Policy, Matcher]:
    cache = _cache(args)
    policy = load_policy(Path(directory), cache_dir=cache)
    return policy, build_matcher(policy.rules, backend=args.backend, cache_dir=cache)


def _print(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def _failed(args: argparse.Namespace, errors: list[str], message: str) -> int:
    if args.json:
        _print({"ok": False, "errors": errors})
    print(message, file=sys.stderr)
    return 1


def cmd_test(args: argparse.Namespace) -> int:
    try:
        policy, matcher = _load(args.directory, args)
    except PolicyError as exc:
        if args.json:
            _print({"ok": False, "errors": [str(i) for i in exc.errors], "failures": []})
        print(str(exc), file=sys.stderr)
        return 1
    failures: list[Any] = [*check_examples(policy, matcher)]
    failures += _stale_model(Path(args.directory), policy)
    examples = sum(len(r.examples_match) + len(r.examples_no_match) for r in policy.rules)
    if args.json:
        _print(
            {
                "ok": not failures,
                "rules": len(policy.rules),
                "examples": examples,
                "version": policy.version,
                "failures": [str(f) for f in failures],
                "errors": [],
            }
        )
    else:
        for failure in failures:
            print(failure)
        verdict = "FAILED" if failures else "ok"
        print(
            f"{args.directory}: {len(policy.rules)} rules, {examples} examples, "
            f"{len(failures)} failed: {verdict}"
        )
    return 1 if failures else 0


def _stale_model(directory: Path, policy: Policy) -> list[str]:
    """A model trained on other examples than the pack's is a failure: the
    analyst changed the examples and forgot ``chatguard policy train``."""
    examples = directory / MODEL_DIR / "examples"
    if not examples.is_dir() or not example_paths(examples):
        return []
    if policy.signal_model is None:
        return [f"{examples}: examples without a model: run chatguard policy train"]
    if policy.signal_model.examples_sha256 != examples_digest(examples):
        return [f"{directory / MODEL_FILE}: trained on other examples: run chatguard policy train"]
    return []


def cmd_train(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    examples_dir = directory / MODEL_DIR / "examples"
    try:
        examples = read_examples(examples_dir)
    except PolicyError as exc:
        return _failed(args, [str(i) for i in exc.errors], str(exc))
    try:
        model = train(
            examples,
            examples_digest(examples_dir),
            TrainSettings(precision=args.precision, negative_weight=args.negative_weight),
        )
    except ImportError:
        return _failed(
            args,
            ["scikit-learn is not installed"],
            "training needs scikit-learn: pip install 'chatguard[train]'",
        )
    except ValueError as exc:
        return _failed(args, [str(exc)], str(exc))
    out = directory / MODEL_FILE
    tmp = out.with_suffix(".tmp")
    tmp.write_text(dumps(model), encoding="utf-8")
    tmp.replace(out)  # atomic: a running sidecar never reads half a model
    quality = dict(model.quality)
    if args.json:
        _print({"ok": True, "model": str(out), "quality": quality})
        return 0
    print(f"{out}: {quality.get('examples')} examples, {quality.get('features')} features")
    for signal in model.signals:
        q = quality.get(signal.value, {})
        print(
            f"  {signal.value:22} {q.get('examples', 0):5} examples  "
            f"held-out precision {q.get('precision', 0):.2f} recall {q.get('recall', 0):.2f}"
        )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    try:
        policy, matcher = _load(args.policy, args)
    except PolicyError as exc:
        return _failed(args, [str(i) for i in exc.errors], str(exc))
    result = explain(args.text, policy, matcher)
    if args.json:
        _print(result)
        return 0
    print(f"normalised: {result['normalised']}")
    print(f"folded:     {result['folded']}")
    print(f"evasions:   {', '.join(result['evasions']) or 'none'}")
    if not result["rules"]:
        print("no rule matched")
    for rule in result["rules"]:
        spans = ", ".join(repr(s["text"]) for s in rule["spans"])
        print(f"{rule['rule']} ({rule['signal']}, weight {rule['weight']}): {spans}")
        print(f"    {rule['description']}  [{rule['file']}]")
    for found in result["model"]:
        print(
            f"model: {found['signal']} (probability {found['probability']:.2f}, "
            f"weight {found['weight']:g}): {', '.join(found['features'])}"
        )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        policy, matcher = _load(args.policy, args)
    except PolicyError as exc:
        return _failed(args, [str(i) for i in exc.errors], str(exc))
    engine = Engine(policy, matcher)
    try:
        with open(args.transcript, encoding="utf-8") as handle:
            events = list(read(handle, args.transcript))
    except OSError as exc:
        message = f"{args.transcript}: cannot read: {exc.strerror}"
        return _failed(args, [message], message)
    except (TranscriptError, UnicodeDecodeError) as exc:
        return _failed(args, [str(exc)], str(exc))
    steps = list(replay(events, engine))
    if args.summary:
        for summary in summarise(steps):
            if args.json:
                _print(summary.to_json())
            else:
                first = summary.first_escalation_index
                print(
                    f"{summary.conversation}: max risk {summary.max_risk:.2f}, "
                    + (f"escalated at message {first}" if summary.escalated else "not escalated")
                    + (f", banners {summary.banners}" if summary.banners else "")
                )
        return 0
    for step in steps:
        record = step.to_json()
        if args.json:
            _print(record)
        else:
            actions = ", ".join(a["type"] for a in record["actions"]) or "-"
            signals = ", ".join(record["signals"]) or "-"
            print(
                f"{record['index']:>5} {record['conversation']:<20} risk {record['risk']:>7.2f}"
                f"  signals: {signals}  actions: {actions}"
            )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Precision, recall and delay of the pack on labelled transcripts."""
    try:
        policy, matcher = _load(args.policy, args)
    except PolicyError as exc:
        return _failed(args, [str(i) for i in exc.errors], str(exc))
    try:
        events: list[TranscriptEvent] = []
        for path in args.transcripts:
            with open(path, encoding="utf-8") as handle:
                events.extend(read(handle, path))
        with open(args.labels, encoding="utf-8") as handle:
            labels = parse_labels(yaml.safe_load(handle), args.labels)
        report = evaluate(summarise(replay(events, Engine(policy, matcher))), labels)
    except OSError as exc:
        message = f"cannot read: {exc.filename}: {exc.strerror}"
        return _failed(args, [message], message)
    except (TranscriptError, LabelError, yaml.YAMLError, UnicodeDecodeError) as exc:
        return _failed(args, [str(exc)], str(exc))
    if args.json:
        _print(report.to_json())
        return 0
    print(
        f"{'group':<28}{'n':>5}{'precision':>11}{'recall':>8}{'false alarms':>14}"
        f"{'median delay':>14}"
    )

    def row(name: str, fig: Any) -> None:
        j = fig.to_json()

        def show(x: Any) -> str:
            return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)

        print(
            f"{name:<28}{j['conversations']:>5}{show(j['precision']):>11}"
            f"{show(j['recall']):>8}{show(j['false_alarm_rate']):>14}"
            f"{show(j['median_delay']):>14}"
        )

    row("all", report.overall)
    for name, fig in sorted(report.by_category.items()):
        row(f"category: {name}", fig)
    for name, fig in sorted(report.by_slice.items()):
        row(f"slice: {name}", fig)
    for miss in report.misses:
        print(f"  {miss}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """Per signal, the share of labelled phrasings the pack reads as that signal."""
    try:
        policy, matcher = _load(args.policy, args)
    except PolicyError as exc:
        return _failed(args, [str(i) for i in exc.errors], str(exc))
    try:
        files = [(path, Path(path).read_text(encoding="utf-8-sig")) for path in args.messages]
        messages = coverage.read_messages(files)
    except OSError as exc:
        message = f"cannot read: {exc.filename}: {exc.strerror}"
        return _failed(args, [message], message)
    except UnicodeDecodeError as exc:
        return _failed(args, [str(exc)], str(exc))
    except PolicyError as exc:
        return _failed(args, [str(i) for i in exc.errors], str(exc))
    report = coverage.measure(messages, replay(coverage.events(messages), Engine(policy, matcher)))
    if args.json:
        _print(report.to_json())
        return 0
    groups = sorted(report.by_group)
    print(f"{'signal':<24}" + "".join(f"{g:>14}" for g in groups) + f"{'all':>14}")

    def cell(fig: coverage.Figures | None) -> str:
        if fig is None or fig.recall is None:
            return "-"
        return f"{fig.recall:.2f} ({fig.false_signals}/{fig.negatives})"

    for label, fig in sorted(report.by_signal.items()):
        cells = "".join(f"{cell(report.by_group[g].get(label)):>14}" for g in groups)
        print(f"{label:<24}{cells}{cell(fig):>14}")
    cells = "".join(f"{cell(report.group_overall[g]):>14}" for g in groups)
    print(f"{'all':<24}{cells}{cell(report.overall):>14}")
    print("recall (false signals / near-misses)")
    for outcome in report.misses:
        m = outcome.message
        print(f"  missed {m.id} [{m.label}] {m.text!r} -> {', '.join(outcome.found) or '-'}")
    for outcome in report.false_signals:
        m = outcome.message
        print(f"  false signal {m.id} [{m.label}] {m.text!r}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="test, explain and replay a policy pack")
    psub = policy.add_subparsers(dest="policy_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument(
            "--backend",
            choices=("auto", "hyperscan", "fallback"),
            default="auto",
            help="matcher backend (default: Intel Hyperscan where installed, else the fallback)",
        )
        p.add_argument(
            "--cache",
            metavar="DIR",
            help="keep regex verdicts and compiled databases here "
            "(default: chatguard under $XDG_CACHE_HOME, else ~/.cache)",
        )
        p.add_argument("--no-cache", action="store_true", help="neither read nor write a cache")

    test = psub.add_parser("test", help="load the pack and check every rule's examples")
    test.add_argument("directory", nargs="?", default=DEFAULT_POLICY_DIR)
    common(test)
    test.set_defaults(func=cmd_test)

    tr = psub.add_parser("train", help="train the pack's signal model on its examples")
    tr.add_argument("directory", nargs="?", default=DEFAULT_POLICY_DIR)
    tr.add_argument(
        "--precision",
        type=float,
        default=TrainSettings().precision,
        help="held-out precision each signal's threshold is chosen for (default %(default)s)",
    )
    tr.add_argument(
        "--negative-weight",
        type=float,
        default=TrainSettings().negative_weight,
        help="count each held-out message without the signal this many times when "
        "measuring that precision, as at a lower base rate (default %(default)s)",
    )
    tr.add_argument("--json", action="store_true", help="machine-readable output")
    tr.set_defaults(func=cmd_train)

    exp = psub.add_parser("explain", help="what the pack makes of one message")
    exp.add_argument("text")
    exp.add_argument("--policy", default=DEFAULT_POLICY_DIR)
    common(exp)
    exp.set_defaults(func=cmd_explain)

    rep = psub.add_parser("replay", help="replay a transcript (JSONL) through the pack")
    rep.add_argument("transcript")
    rep.add_argument("--policy", default=DEFAULT_POLICY_DIR)
    rep.add_argument("--summary", action="store_true", help="one line per conversation")
    common(rep)
    rep.set_defaults(func=cmd_replay)

    ev = psub.add_parser("evaluate", help="precision, recall and delay on labelled transcripts")
    ev.add_argument("transcripts", nargs="+", help="JSONL transcripts")
    ev.add_argument("--labels", required=True, help="labels YAML (see tests/eval/README.md)")
    ev.add_argument("--policy", default=DEFAULT_POLICY_DIR)
    common(ev)
    ev.set_defaults(func=cmd_evaluate)

    cov = psub.add_parser(
        "coverage", help="per signal, the share of labelled messages the pack reads as it"
    )
    cov.add_argument("messages", nargs="+", help="labelled messages (YAML, see policies/README.md)")
    cov.add_argument("--policy", default=DEFAULT_POLICY_DIR)
    common(cov)
    cov.set_defaults(func=cmd_coverage)
