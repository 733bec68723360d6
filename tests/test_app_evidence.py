"""Evidence end to end: real clients, the real relay and example service, the real log.

A scripted grooming conversation produces a capture; the bundle exported from
the running sidecar verifies offline with the command line; its transcript
shows the flagged message in context; a retention purge keeps the log
verifiable.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import websockets

from chatguard import cli
from chatguard.app import ChatGuard
from chatguard.audit import MemoryAudit
from chatguard.evidence.ledger import Ledger, LockedError
from tests.support.clock import FakeClock
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "eval" / "grooming_en.jsonl"
Client = websockets.ClientConnection


async def received(ws: Client, text: str, within: float = 3.0) -> None:
    """Wait for the direct message ``text`` (skipping echoes, banners and others)."""
    async with asyncio.timeout(unit(within)):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "dm" and frame.get("text") == text:
                return


async def connect(guard: ChatGuard, user: str, age: int) -> Client:
    ws = await websockets.connect(ws_url(guard, f"/ws?user={user}&age={age}"))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


def conversation(name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in SCRIPT.read_text("utf-8").splitlines() if line]
    return [line for line in lines if line["conversation"] == name]


#: A short scripted conversation for the test pack (tests/support/pack.py):
#: the adult's request for a picture is captured and escalated.
SHORT = [
    {"sender": s, "recipients": [r], "text": t, "sender_attrs": {"age_band": band}}
    for s, r, band, t in [
        ("amy", "bob", "minor", "hi"),
        ("bob", "amy", "adult", "hey how was school"),
        ("amy", "bob", "minor", "ok i guess"),
        ("bob", "amy", "adult", "you can send me a pic"),
        ("amy", "bob", "minor", "why"),
        ("bob", "amy", "adult", "just because"),
    ]
]


async def evidence_guard(
    make_guard: GuardFactory, upstream: str, pack: tuple[Path, Path], **extra: Any
) -> ChatGuard:
    guard = await make_guard(
        upstream,
        policy={"directory": str(pack[0]), "watch": False},
        banners={"directory": str(pack[1])},
        evidence={"enabled": True, "fsync": "batch", "context_after": 3},
        **extra,
    )
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    return guard


async def play(guard: ChatGuard, script: list[dict[str, Any]]) -> None:
    users = {line["sender"]: line["sender_attrs"]["age_band"] for line in script}
    sockets = {
        u: await connect(guard, u, 13 if band == "minor" else 34) for u, band in users.items()
    }
    try:
        await eventually(lambda: len(guard.relay.sessions) == len(users))
        for line in script:
            [to] = line["recipients"]
            await sockets[line["sender"]].send(
                json.dumps({"type": "dm", "to": to, "text": line["text"]})
            )
            # In order, as people type: the next line waits for this one to arrive.
            await received(sockets[to], line["text"])
    finally:
        for ws in sockets.values():
            await ws.close()


def run_cli(*argv: str, capsys: Any) -> tuple[int, dict[str, Any]]:
    code = cli.main([*argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


async def test_a_scripted_conversation_is_captured_exported_verified_and_purged(
    chat_service, make_guard: GuardFactory, tmp_path: Path, capsys: Any, test_pack
) -> None:
    await capture_export_verify_purge(
        make_guard, chat_service.url, test_pack, SHORT, "dm:amy:bob", tmp_path, capsys
    )


@pytest.mark.slow
async def test_a_grooming_conversation_under_the_default_pack_is_captured_and_verifies(
    chat_service, make_guard: GuardFactory, tmp_path: Path, capsys: Any
) -> None:
    # Slow: the full default pack takes seconds to compile.
    await capture_export_verify_purge(
        make_guard,
        chat_service.url,
        (ROOT / "policies", ROOT / "banners"),
        conversation("c-gr-001"),
        "dm:jay_t:mia.k",
        tmp_path,
        capsys,
    )


async def capture_export_verify_purge(
    make_guard: GuardFactory,
    upstream: str,
    pack: tuple[Path, Path],
    script: list[dict[str, Any]],
    conversation_id: str,
    tmp_path: Path,
    capsys: Any,
) -> None:
    guard = await evidence_guard(make_guard, upstream, pack)
    assert guard.evidence_log is not None
    assert guard.audit is guard.evidence_log
    await play(guard, script)
    log = guard.evidence_log
    await eventually(
        lambda: (
            log.metrics.registry.get_sample_value(
                "chatguard_evidence_records_total", {"kind": "capture"}
            )
            is not None
        )
    )
    # The case opened by the escalation links the capture written for the same message.
    case = next(c for c in await guard.cases.list() if c.evidence)
    capture = await log.read(case.evidence[0], actor="mod:kim", reason="triage")
    assert capture is not None
    assert capture["kind"] == "capture"
    assert capture["conversation"] == conversation_id
    adult = next(line["sender"] for line in script if line["sender_attrs"]["age_band"] == "adult")
    assert capture["reported_person"]["platform_id"] == adult
    assert capture["reported_person"]["age_band"] == "adult"
    assert capture["reported_person"]["ip_capture_events"][0]["ip_address"] == "127.0.0.1"
    assert capture["policy"]["rules"]
    assert capture["context_before"], "the messages before the capture are in it"
    flagged = capture["message"]["text"]
    # The case book recorded the case's opening in the same log: export by case id
    # from the running sidecar (the console's path) ...
    data = await log.export(case=case.id, actor="mod:kim", reason="hotline report")
    bundle_path = tmp_path / "case.zip"
    bundle_path.write_bytes(data)
    # ... and verify offline with the command line.
    code, report = run_cli("evidence", "verify", str(bundle_path), capsys=capsys)
    assert code == 0, report
    assert report["subject"] == f"case:{case.id}"
    assert report["records"] >= 3  # capture(s), the case record, the read and the export
    code, report = run_cli(
        "evidence", "verify", str(bundle_path), "--key", report["key_ids"][0], capsys=capsys
    )
    assert code == 0

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        text = zf.read("transcript.txt").decode()
        page = zf.read("transcript.html").decode()
    lines = text.splitlines()
    [captured_at] = [i for i, line in enumerate(lines) if line.startswith(">> ")][:1]
    assert "[[" in lines[captured_at]
    assert flagged.split()[0] in lines[captured_at]
    # In context: the conversation's earlier lines come before it.
    assert script[0]["text"] in "\n".join(lines[:captured_at])
    assert "<mark" in page

    await guard.stop()  # flush; the command line takes the log over
    data_dir = guard.config.data_dir
    code, result = run_cli("evidence", "verify-log", "--data-dir", data_dir, capsys=capsys)
    assert (code, result["ok"]) == (0, True)
    code, result = run_cli(
        "evidence",
        "purge",
        "--data-dir",
        data_dir,
        "--captured-days",
        "0",
        "--escalated-days",
        "0",
        capsys=capsys,
    )
    assert code == 0
    assert result["purged"] >= 1
    code, result = run_cli("evidence", "verify-log", "--data-dir", data_dir, capsys=capsys)
    assert (code, result["ok"]) == (0, True)
    out = tmp_path / "after-purge.zip"
    code, result = run_cli(
        "evidence",
        "export",
        "--data-dir",
        data_dir,
        "--case",
        case.id,
        "--out",
        str(out),
        capsys=capsys,
    )
    assert code == 0
    code, report = run_cli("evidence", "verify", str(out), capsys=capsys)
    assert code == 0
    assert report["purged"] >= 1
    ledger = Ledger(Path(data_dir), instance=None, now=FakeClock())
    try:
        actions = [r["action"] for i in ledger.audits if (r := ledger.record(i))]
        # Custody: the read, both exports and the purge are in the log.
        assert {"read", "export", "purge", "case.opened"} <= set(actions)
    finally:
        ledger.close()


async def test_without_the_evidence_log_captures_stay_in_memory(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    assert guard.evidence_log is None
    assert isinstance(guard.audit, MemoryAudit)
    assert not (Path(guard.config.data_dir) / "evidence").exists()


async def test_a_log_in_use_stops_start_up_with_a_clear_error(
    chat_service, make_guard: GuardFactory, tmp_path: Path, test_pack
) -> None:
    data_dir = tmp_path / "shared"
    holder = Ledger(data_dir, instance="other", now=FakeClock())
    try:
        with pytest.raises(LockedError, match="open in another process"):
            await evidence_guard(make_guard, chat_service.url, test_pack, data_dir=str(data_dir))
    finally:
        holder.close()


async def test_a_capture_lists_the_banners_shown_in_its_conversation_with_outcomes(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await evidence_guard(make_guard, chat_service.url, test_pack)
    log = guard.evidence_log
    assert log is not None
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await bob.send(json.dumps({"type": "dm", "to": "amy", "text": "add me on snap"}))
        await received(amy, "add me on snap")
        async with asyncio.timeout(unit(3)):
            while not await guard.banner_history.shown("amy", 5):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await amy.send(json.dumps({"type": "dm", "to": "bob", "text": "/report snap again"}))

        def reported() -> bool:
            value = guard.metrics.registry.get_sample_value(
                "chatguard_banner_outcomes_total",
                {"banner": "off_platform_warning", "variant": "default", "outcome": "reported"},
            )
            return value == 1.0

        await eventually(reported)
        await bob.send(json.dumps({"type": "dm", "to": "amy", "text": "send me a pic"}))
        await received(amy, "send me a pic")
        case = None
        async with asyncio.timeout(unit(3)):
            while case is None:
                case = next((c for c in await guard.cases.list() if len(c.evidence) >= 2), None)
                await asyncio.sleep(0.01)
        records = [
            await log.read(record_id, actor="mod:kim", reason="triage")
            for record_id in case.evidence
        ]
        [capture] = [r for r in records if r and r["trigger"] == "policy"]
        [by_report] = [r for r in records if r and r["trigger"] == "report"]
    finally:
        await amy.close()
        await bob.close()
    # The report is captured before it decides the warning's outcome.
    assert [(b["user"], b["banner"], b["outcome"]) for b in by_report["banners_shown"]] == [
        ("amy", "off_platform_warning", None)
    ]
    shown = capture["banners_shown"]
    assert [(b["user"], b["banner"], b["outcome"]) for b in shown] == [
        ("amy", "off_platform_warning", "reported"),
        ("bob", "deterrence_image_request", None),  # shown for this very message
    ]
    warning, deterrence = shown
    assert warning["kind"] == "warning"
    assert warning["audience"] == "recipients"
    assert warning["trigger"] == "signal:isolation"
    assert warning["decided_at"] >= warning["at"]
    assert warning["shown_at"].endswith("Z")
    assert deterrence["kind"] == "deterrence"
    assert deterrence["id"]
