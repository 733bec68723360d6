"""``chatguard evidence ...``: export, verify, checkpoint, hold and purge evidence.

Commands (``--json`` prints one object; exit 0 only on success):

* ``export --data-dir DIR (--case ID | --conversation C) --out BUNDLE.zip``
  — ``{"ok", "out", "subject", "records", "bytes"}``.
* ``verify BUNDLE.zip [--key FINGERPRINT]`` — ``BundleReport.to_json()``;
  exit 1 naming the first failing item.
* ``verify-log --data-dir DIR`` — ``{"ok", "size", "problems": [...]}``.
* ``checkpoint --data-dir DIR`` — sign a checkpoint now; prints the note.
* ``hold --data-dir DIR (--case|--conversation|--record) X [--release]``
  — place or release a legal hold (an audit record).
* ``purge --data-dir DIR [--dry-run]`` — run retention once.
* ``rotate-key --data-dir DIR`` — sign with a new key from now on; retired
  public keys stay in the keyring and in every bundle.

Commands that write (all but ``verify`` and ``verify-log``) audit themselves
in the log with ``--actor`` (default: the login name) and ``--reason``. The
log takes one writer at a time: while a sidecar runs on the same data
directory, use its console instead (the same functions).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from .config import EvidenceConfig
from .evidence import bundle, retention
from .evidence.keys import rotate
from .evidence.ledger import Ledger, LedgerError
from .evidence.log import purge_due
from .evidence.segments import SegmentError, load_key

EXIT_OK, EXIT_FAILURE = 0, 1


def _out(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if args.json else text)


def _fail(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": message}))
    print(f"chatguard: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _open(args: argparse.Namespace) -> Ledger:
    key = load_key(Path(args.key_file)) if args.key_file else None
    data_dir = Path(args.data_dir)
    if not (data_dir / "evidence" / "INSTANCE").exists():
        raise LedgerError(f"{data_dir} holds no evidence log")
    return Ledger(data_dir, instance=None, now=time.time, key=key)


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cmd_export(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        data = bundle.export(
            ledger,
            conversation=args.conversation,
            case=args.case,
            actor=_actor(args),
            reason=args.reason,
            now=time.time(),
        )
    finally:
        ledger.close()
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    report = bundle.verify_bundle(data)
    subject = f"case:{args.case}" if args.case else f"conversation:{args.conversation}"
    _out(
        args,
        {
            "ok": True,
            "out": str(out),
            "subject": subject,
            "records": report.records,
            "bytes": len(data),
        },
        f"{out}: {report.records} records of {subject} ({len(data)} bytes)",
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        data = Path(args.bundle).read_bytes()
    except OSError as exc:
        return _fail(args, f"{args.bundle}: {exc.strerror}")
    report = bundle.verify_bundle(data, key=args.key)
    if report.ok:
        _out(
            args,
            report.to_json(),
            f"{args.bundle}: valid — {report.records} records ({report.purged} purged) of "
            f"{report.subject} in {report.origin} at size {report.checkpoint_size}; "
            f"signed by {', '.join(report.key_ids)}",
        )
        return EXIT_OK
    if args.json:
        print(json.dumps(report.to_json()))
    print(f"chatguard: {args.bundle}: INVALID: {report.item}: {report.reason}", file=sys.stderr)
    return EXIT_FAILURE


def cmd_verify_log(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        problems = ledger.verify()
        size = ledger.size
    finally:
        ledger.close()
    ok = not problems
    _out(
        args,
        {"ok": ok, "size": size, "problems": problems},
        f"{args.data_dir}: {size} records, "
        + ("valid" if ok else "INVALID:\n  " + "\n  ".join(problems)),
    )
    return EXIT_OK if ok else EXIT_FAILURE


def cmd_checkpoint(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        note = ledger.checkpoint()
    finally:
        ledger.close()
    _out(args, {"ok": True, "note": note.decode("utf-8")}, note.decode("utf-8").rstrip("\n"))
    return EXIT_OK


def cmd_hold(args: argparse.Namespace) -> int:
    subject = (
        f"case:{args.case}"
        if args.case
        else f"conversation:{args.conversation}"
        if args.conversation
        else f"record:{args.record}"
    )
    action = retention.HOLD_RELEASE if args.release else retention.HOLD_PLACE
    ledger = _open(args)
    try:
        record_id = ledger.audit(_actor(args), action, subject, args.reason)
    finally:
        ledger.close()
    _out(
        args,
        {"ok": True, "id": record_id, "action": action, "subject": subject},
        f"{action} {subject}: {record_id}",
    )
    return EXIT_OK


def cmd_rotate_key(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        old = ledger.keyring.signer.key_id
        keyring = rotate(ledger.directory, time.time(), name=ledger.origin)
        ledger.keyring = keyring
        ledger.audit(
            _actor(args),
            "key.rotate",
            f"key:{keyring.signer.key_id}",
            args.reason,
            {"retired": old},
        )
    finally:
        ledger.close()
    new = keyring.signer.key_id
    _out(args, {"ok": True, "key_id": new, "retired": old}, f"signing key {new} (retired {old})")
    return EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    defaults = EvidenceConfig()
    captured = args.captured_days if args.captured_days is not None else defaults.captured_days
    escalated = args.escalated_days if args.escalated_days is not None else defaults.escalated_days
    ledger = _open(args)
    try:
        if args.dry_run:
            entries = [
                (i, r)
                for i in range(ledger.size)
                if ledger.kinds[i] in ("capture", "context", "audit")
                and (r := ledger.record(i)) is not None
            ]
            plan = retention.plan_purge(
                entries, now=time.time(), captured_days=captured, escalated_days=escalated
            )
            count, held = len(plan.purge), len(plan.held)
        else:
            count = purge_due(
                ledger,
                now=time.time(),
                captured_days=captured,
                escalated_days=escalated,
                actor=_actor(args),
                reason=args.reason or "retention period over",
            )
            held = -1
    finally:
        ledger.close()
    _out(
        args,
        {"ok": True, "purged": count, "dry_run": args.dry_run, "held": held},
        f"{'would purge' if args.dry_run else 'purged'} {count} payloads",
    )
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run an evidence command, turning the log's own errors into one clear line."""
    try:
        code: int = args.evidence_func(args)
    except (LedgerError, SegmentError) as exc:
        return _fail(args, str(exc))
    return code


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evidence = sub.add_parser("evidence", help="export, verify and manage evidence")
    esub = evidence.add_subparsers(dest="evidence_command", required=True)

    def cmd(name: str, help_text: str, func: Any, *, log: bool = True) -> argparse.ArgumentParser:
        p = esub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if log:
            p.add_argument("--data-dir", required=True, help="the sidecar's data_dir")
            p.add_argument("--key-file", default="", help="encryption key file, if encrypted")
            p.add_argument("--actor", default="", help="who is acting (audited)")
            p.add_argument("--reason", default="", help="why (audited)")
        p.set_defaults(func=run, evidence_func=func)
        return p

    exp = cmd("export", "write an offline-verifiable bundle of a case or conversation", cmd_export)
    which = exp.add_mutually_exclusive_group(required=True)
    which.add_argument("--case")
    which.add_argument("--conversation")
    exp.add_argument("--out", required=True, help="bundle file to write (.zip)")

    ver = cmd("verify", "verify a bundle offline", cmd_verify, log=False)
    ver.add_argument("bundle")
    ver.add_argument("--key", default=None, help="fingerprint (key id) that must have signed it")

    cmd("verify-log", "verify a whole evidence log", cmd_verify_log)
    cmd("checkpoint", "sign a checkpoint of the log now", cmd_checkpoint)

    hold = cmd("hold", "place (or --release) a legal hold", cmd_hold)
    target = hold.add_mutually_exclusive_group(required=True)
    target.add_argument("--case")
    target.add_argument("--conversation")
    target.add_argument("--record")
    hold.add_argument("--release", action="store_true")

    cmd("rotate-key", "start signing with a new key (old public keys stay)", cmd_rotate_key)

    purge = cmd("purge", "remove payloads whose retention is over", cmd_purge)
    purge.add_argument("--dry-run", action="store_true")
    purge.add_argument("--captured-days", type=float, default=None)
    purge.add_argument("--escalated-days", type=float, default=None)
