"""A real Prosody XMPP server for the tests, started on loopback; never a fake.

One server per test session: ``prosody -F`` in the foreground with a
throwaway configuration in a temporary directory (data, pid and log files
there too), its c2s and HTTP ports free loopback ports, WebSocket (RFC 7395)
at ``/xmpp-websocket``, a MUC component at ``conference.localhost`` with
non-anonymous rooms, no TLS and no s2s. Users are registered with
``prosodyctl register``. The server is stopped by its pid.

Without ``prosody`` installed (``tools/ensure-packages`` installs it) the
tests that need it are skipped, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.timing import unit

DOMAIN = "localhost"
MUC = "conference.localhost"

CONFIG = """\
-- Throwaway test configuration; see tests/support/prosody.py.
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
certificates = "{dir}/certs"
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "presence"; "websocket"; "http" }}
modules_disabled = {{ "tls"; "s2s"; "offline" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
cross_domain_websocket = true
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
https_interfaces = {{ }}
authentication = "internal_plain"
storage = "internal"
log = {{ info = "{dir}/prosody.log"; error = "{dir}/prosody.err" }}

VirtualHost "{domain}"

Component "{muc}" "muc"
  muc_room_default_public_jids = true
  muc_room_locking = false
"""


class Prosody:
    """A running Prosody; ``ws_url`` is its XMPP-over-WebSocket endpoint."""

    def __init__(
        self,
        binary: str,
        ctl: str,
        directory: Path,
        config: str | None = None,
        domain: str = DOMAIN,
    ) -> None:
        """``config`` replaces the test configuration; ``{dir}``, ``{c2s_port}``
        and ``{http_port}`` in it are filled in."""
        self.binary = binary
        self.ctl = ctl
        self.directory = directory
        self.domain = domain
        self.http_port = free_port()
        self.c2s_port = free_port()
        self.config = directory / "prosody.cfg.lua"
        self._process: subprocess.Popen[bytes] | None = None
        self._users = itertools.count(1)
        for sub in ("data", "certs"):
            (directory / sub).mkdir(exist_ok=True)
        self.config.write_text(
            (config or CONFIG).format(
                dir=directory,
                c2s_port=self.c2s_port,
                http_port=self.http_port,
                domain=DOMAIN,
                muc=MUC,
            )
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"

    @property
    def upstream(self) -> str:
        """The ``upstream.url`` for ChatGuard in front of this server."""
        return f"ws://127.0.0.1:{self.http_port}"

    def register(self, name: str, password: str = "secret") -> str:
        """Register ``<name><n>@<domain>`` (unique per server); returns the localpart."""
        user = f"{name}{next(self._users)}"
        subprocess.run(
            [self.ctl, "--config", str(self.config), "register", user, self.domain, password],
            check=True,
            capture_output=True,
            timeout=unit(20),
        )
        return user

    def start(self) -> None:
        log = (self.directory / "stdout.log").open("ab")
        self._process = subprocess.Popen(
            [self.binary, "-F", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + unit(20)
        while not _listening(self.http_port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                logs = "".join(
                    p.read_text(errors="replace")
                    for p in (self.directory / "stdout.log", self.directory / "prosody.err")
                    if p.exists()
                )
                raise RuntimeError(f"prosody did not start:\n{logs}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=unit(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=unit(0.5)):
            return True
    except OSError:
        return False


def binaries() -> tuple[str, str]:
    """The ``prosody`` and ``prosodyctl`` binaries, or skip (fail under CI=true)."""
    binary, ctl = shutil.which("prosody"), shutil.which("prosodyctl")
    if binary is None or ctl is None:
        message = "prosody is not installed (tools/ensure-packages installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return binary, ctl


@pytest.fixture(scope="session")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    binary, ctl = binaries()
    server = Prosody(binary, ctl, tmp_path_factory.mktemp("prosody"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
