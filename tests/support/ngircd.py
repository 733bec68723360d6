"""A real ngIRCd for the tests, started from the example configuration.

``ngircd`` is a session fixture: ``examples/irc/ngircd.conf`` (so the example
never rots) with its port replaced by a free loopback port, written to a
temporary directory and run in the foreground (``--nodaemon``); stopped by
its pid when the session ends. It also listens for TLS on a second port, with
a throwaway self-signed certificate for ``localhost``. Without the ``ngircd`` binary the tests that
need it are skipped, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.timing import unit
from tests.support.tls import self_signed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "irc" / "ngircd.conf"


@dataclass(frozen=True)
class Ngircd:
    host: str
    port: int
    log: Path
    tls_port: int  # the same server over TLS, with the certificate in ``cert``
    cert: Path


def ngircd_config(port: int) -> str:
    """The example configuration, listening on ``port``."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^(\s*Ports\s*=\s*)\d+", rf"\g<1>{port}", text)
    assert count == 1, "examples/irc/ngircd.conf must set Ports once"
    return text


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=unit(0.2)):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def ngircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ngircd]:
    binary = shutil.which("ngircd") or (
        "/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd") else None
    )
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ngircd is not installed (tools/ensure-packages installs it)")
        pytest.skip("ngircd is not installed")
    directory = tmp_path_factory.mktemp("ngircd")
    port = free_port()
    conf = directory / "ngircd.conf"
    tls_port = free_port()
    cert, key = self_signed(directory)
    tls = f"\n[SSL]\n    CertFile = {cert}\n    KeyFile = {key}\n    Ports = {tls_port}\n"
    conf.write_text(ngircd_config(port) + tls, encoding="utf-8")
    log = directory / "ngircd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--nodaemon", "--config", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + unit(10)
        while not (_listening(port) and _listening(tls_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ngircd did not start: {log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Ngircd("127.0.0.1", port, log, tls_port, cert)
    finally:
        process.terminate()
        try:
            process.wait(timeout=unit(5))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
