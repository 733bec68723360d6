"""``chatguard console hash-password`` and ``chatguard console token``."""

from __future__ import annotations

import io
import json

import pytest
from argon2 import PasswordHasher

from chatguard.cli import main
from chatguard.console.accounts import token_hash


def test_hash_password_reads_stdin_and_prints_an_argon2_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["console", "hash-password", "--json"]) == 0
    hashed = json.loads(capsys.readouterr().out)["password_hash"]
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "correct horse battery")


def test_hash_password_refuses_a_short_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["console", "hash-password"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "at least 12 characters" in captured.err


def test_token_prints_a_token_and_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console", "token", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["token"].startswith("cg_")
    assert out["token_hash"] == token_hash(out["token"])
    assert main(["console", "token"]) == 0
    text = capsys.readouterr().out
    assert "shown once" in text
    assert "token_hash" in text
