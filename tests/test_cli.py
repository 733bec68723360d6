"""The command line: exit codes, error messages naming file and key, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatguard import config as config_mod
from chatguard.cli import main


def test_config_check_accepts_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("upstream:\n  url: ws://127.0.0.1:9000\n")
    assert main(["config", "check", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "config": str(cfg)}


def test_config_check_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("limits:\n  max_frame_bytes: lots\n")
    assert main(["config", "check", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert str(cfg) in err
    assert "limits.max_frame_bytes" in err
    assert "integer" in err


def test_config_check_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("listen:\n  prot: 80\n")
    assert main(["config", "check", str(cfg), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert "listen.prot" in out["error"]


def test_config_check_loads_the_codec_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("client:\n  - kind: shout\n    match: {type: x}\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"codec:\n  mapping: {mapping}\n")
    assert main(["config", "check", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert str(mapping) in err
    assert "client[0].kind" in err


def test_run_refuses_a_bad_config_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("upstream:\n  url: http://not-a-websocket\n")
    assert main(["run", "--config", str(cfg)]) == 1
    assert "upstream.url" in capsys.readouterr().err


def test_config_keys_lists_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "keys", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in rows] == [k for k, _, _ in config_mod.iter_keys()]
    assert all(r["doc"] for r in rows)
    by_key = {r["key"]: r["default"] for r in rows}
    assert by_key["listen.port"] == 8000
    assert by_key["admin.port"] == 8081


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2


def test_config_check_accepts_the_xmpp_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "xmpp" / "chatguard.yaml"
    assert main(["config", "check", str(example), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
