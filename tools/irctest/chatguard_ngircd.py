"""irctest controller: ngIRCd behind a ChatGuard sidecar.

irctest (github.com/progval/irctest) drives an IRC server through its
controllers. This one starts ngIRCd exactly as irctest's own ngIRCd
controller does, but on a private port, and puts ``chatguard run`` (codec
``irc``, pass-through pipeline) on the port the tests connect to. Every test
then talks to ngIRCd through the sidecar; the same selection run against
ngIRCd directly must pass the same number of tests (``tools/run-irctest``).

Used as ``--controller chatguard_ngircd`` with this directory on PYTHONPATH
and ``CHATGUARD_BIN`` naming the ``chatguard`` executable. Not part of the
ChatGuard package: it imports irctest, which is never vendored.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from irctest.controllers.ngircd import NgircdController


class ChatGuardNgircdController(NgircdController):
    # software_name stays "ngIRCd": tests read it to know which of ngIRCd's
    # documented implementation choices to expect, and those do not change
    # behind the sidecar.
    sidecar: subprocess.Popen | None = None

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None,
        websocket_port: int | None,
    ) -> None:
        # ngIRCd on a port of its own; the tests' port belongs to the sidecar.
        server_host, server_port = self.get_hostname_and_port()
        super().run(
            server_host,
            server_port,
            password=password,
            ssl=False,
            run_services=run_services,
            faketime=faketime,
            websocket_hostname=websocket_hostname,
            websocket_port=websocket_port,
        )
        self._wait_listening(server_host, server_port)
        assert self.directory is not None
        tls = ""
        if ssl:
            tls = f"    tls_cert: '{self.pem_path}'\n    tls_key: '{self.key_path}'\n"
        config = self.directory / "chatguard.yaml"
        config.write_text(
            "codec: {type: irc}\n"
            "listen: {host: 127.0.0.1, port: 0}\n"
            "admin: {enabled: false}\n"
            f"data_dir: '{self.directory / 'chatguard-data'}'\n"
            "log_level: warning\n"
            "limits: {idle_timeout: 0}\n"
            "irc:\n"
            f"  upstream: {{host: '{server_host}', port: {server_port}}}\n"
            "  listen:\n"
            f"    host: '{hostname}'\n"
            f"    port: {port}\n" + tls
        )
        binary = os.environ.get("CHATGUARD_BIN") or shutil.which("chatguard") or "chatguard"
        self.sidecar = self.execute([binary, "run", "--config", config], proc_name="chatguard")
        self.port = port
        self.hostname = hostname
        self._wait_listening(hostname, port, self.sidecar)

    @staticmethod
    def _wait_listening(host: str, port: int, process: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"chatguard exited with {process.returncode}")
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {host}:{port}")

    def check_is_alive(self) -> None:
        super().check_is_alive()
        if self.sidecar is not None and self.sidecar.poll() is not None:
            raise RuntimeError(f"chatguard exited with {self.sidecar.returncode}")

    def kill_proc(self) -> None:
        if self.sidecar is not None:
            self.sidecar.terminate()
            try:
                self.sidecar.wait(10)
            except subprocess.TimeoutExpired:
                self.sidecar.kill()
                self.sidecar.wait()
            self.sidecar = None
        super().kill_proc()


def get_irctest_controller_class() -> type[ChatGuardNgircdController]:
    return ChatGuardNgircdController
