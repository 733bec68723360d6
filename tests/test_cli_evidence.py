"""``chatguard evidence ...`` on a real log: exit codes, JSON shapes, clear errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chatguard import cli
from chatguard.evidence import records
from chatguard.evidence.ledger import Ledger
from tests.support.clock import FakeClock

Run = Any


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    ledger = Ledger(tmp_path / "data", instance="cli-test", now=FakeClock())
    for n in range(3):
        ledger.append(
            records.context_record(
                record_id=f"rec-{n}",
                instance="cli-test",
                at=1_700_000_000.0,
                capture_id="cap",
                conversation="room:lobby",
                after=[{"text": f"m{n}"}],
                complete=True,
            )
        )
    ledger.audit("mod:kim", "case.opened", "case:5", "", {"conversation": "room:lobby"})
    ledger.close()
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    out = captured.out.strip()
    try:
        parsed = json.loads(out.splitlines()[-1]) if out else None
    except ValueError:
        parsed = out
    return code, parsed, captured.err


def test_export_then_verify(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.zip"
    code, result, _ = run(
        capsys, "evidence", "export", "--data-dir", str(data_dir), "--case", "5",
        "--out", str(out), "--actor", "mod:kim", "--reason", "report", "--json",
    )  # fmt: skip
    assert code == 0
    assert result["subject"] == "case:5"
    assert result["records"] == 5  # three records, the case record, the export record
    assert zipfile.is_zipfile(out)
    code, report, _ = run(capsys, "evidence", "verify", str(out), "--json")
    assert code == 0
    assert report["ok"] is True
    code, text, _ = run(capsys, "evidence", "verify", str(out))
    assert code == 0
    assert "valid" in text


def test_verify_names_the_first_failing_item(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.zip"
    run(capsys, "evidence", "export", "--data-dir", str(data_dir), "--conversation",
        "room:lobby", "--out", str(out))  # fmt: skip
    with zipfile.ZipFile(out) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files["records/1.json"] = files["records/1.json"].replace(b"payload", b"paylaod")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    code, report, err = run(capsys, "evidence", "verify", str(bad), "--json")
    assert code == 1
    assert (report["ok"], report["item"]) == (False, "records/1.json")
    assert "INVALID: records/1.json" in err
    code, _, err = run(capsys, "evidence", "verify", str(out), "--key", "ab" * 32)
    assert code == 1
    assert "no key with fingerprint" in err


def test_verify_log_checkpoint_hold_and_purge(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run(capsys, "evidence", "verify-log", "--data-dir", str(data_dir), "--json")
    assert (code, result) == (0, {"ok": True, "size": 4, "problems": []})
    code, result, _ = run(capsys, "evidence", "checkpoint", "--data-dir", str(data_dir), "--json")
    assert code == 0
    assert result["note"].startswith("chatguard/cli-test\n4\n")
    code, result, _ = run(
        capsys, "evidence", "hold", "--data-dir", str(data_dir), "--conversation", "room:lobby",
        "--reason", "police preservation request", "--json",
    )  # fmt: skip
    assert code == 0
    assert result["action"] == "legal_hold.place"
    purge = ("evidence", "purge", "--data-dir", str(data_dir), "--captured-days", "0", "--json")
    code, result, _ = run(capsys, *purge, "--dry-run")
    assert (code, result["purged"], result["held"]) == (0, 0, 3)
    run(capsys, "evidence", "hold", "--data-dir", str(data_dir), "--conversation", "room:lobby",
        "--release")  # fmt: skip
    code, result, _ = run(capsys, *purge)
    assert (code, result["purged"]) == (0, 3)
    code, result, _ = run(capsys, "evidence", "verify-log", "--data-dir", str(data_dir), "--json")
    assert (code, result["ok"]) == (0, True)


def test_a_damaged_log_fails_verify_log(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    segment = data_dir / "evidence" / "segments" / "seg-000000000000.log"
    raw = bytearray(segment.read_bytes())
    # Change one signature character inside record 0 (to another one: two
    # neighbours swapped may be equal) and fix nothing else: the frame
    # checksum now fails, and record 0 is not the tail, so it is damage.
    at = raw.index(b'"sig":"') + 8
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")
    segment.write_bytes(bytes(raw))
    code, _, err = run(capsys, "evidence", "verify-log", "--data-dir", str(data_dir))
    assert code == 1
    assert "damaged record" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("evidence", "verify-log", "--data-dir", "/nonexistent/dir"),
        ("evidence", "export", "--data-dir", "/nonexistent/dir", "--case", "1", "--out", "x.zip"),
    ],
)
def test_a_missing_log_is_one_clear_line(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.strip() == "chatguard: /nonexistent/dir holds no evidence log"


def test_an_unknown_case_and_a_missing_bundle_are_clear(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "evidence", "export", "--data-dir", str(data_dir), "--case", "99",
                       "--out", str(tmp_path / "x.zip"))  # fmt: skip
    assert code == 1
    assert "no audit record names case '99'" in err
    assert not (tmp_path / "x.zip").exists()
    code, _, err = run(capsys, "evidence", "verify", str(tmp_path / "absent.zip"))
    assert code == 1
    assert "No such file" in err


def test_the_log_takes_one_writer(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = Ledger(data_dir, instance=None, now=FakeClock())
    try:
        code, _, err = run(capsys, "evidence", "checkpoint", "--data-dir", str(data_dir))
    finally:
        holder.close()
    assert code == 1
    assert "open in another process" in err


def test_a_rotated_key_signs_from_now_on_and_old_records_still_verify(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run(capsys, "evidence", "rotate-key", "--data-dir", str(data_dir), "--json")
    assert code == 0
    assert result["key_id"] != result["retired"]
    out = tmp_path / "b.zip"
    run(capsys, "evidence", "export", "--data-dir", str(data_dir), "--case", "5", "--out", str(out))
    code, report, _ = run(
        capsys, "evidence", "verify", str(out), "--key", result["key_id"], "--json"
    )
    assert code == 0
    assert set(report["key_ids"]) == {result["key_id"], result["retired"]}
    code, result, _ = run(capsys, "evidence", "verify-log", "--data-dir", str(data_dir), "--json")
    assert (code, result["ok"]) == (0, True)
