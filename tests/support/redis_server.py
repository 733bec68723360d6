"""A real Redis for the tests, found or started; never a fake.

Where ``redis_url`` comes from, first match wins:

1. ``CHATGUARD_TEST_REDIS_URL``, used as given.
2. A Redis answering on 127.0.0.1:6379 (dev and CI machines run one); the
   tests use its db 15.
3. A private ``redis-server`` on a free port, without persistence, in a
   temporary directory; stopped by its pid when the session ends.
4. With ``CI=true``: the session fails, because CI must not silently skip the
   Redis half of the suite. Elsewhere the Redis tests are skipped.

Invariants: each test works under its own unique key prefix and deletes only
keys under that prefix, so a shared Redis is never clobbered; every client
and process opened here is closed here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis

from chatguard.stores.redis import RedisStore
from tests.support.timing import unit

LOCAL_REDIS = ("127.0.0.1", 6379)
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/15"


def answers_ping(host: str, port: int) -> bool:
    """True when a Redis that needs no password answers on host:port."""
    try:
        with socket.create_connection((host, port), timeout=unit(0.5)) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` process, started and stopped by its pid.

    The port survives ``stop``/``start``, so a test can restart Redis under
    a client that stays connected to the same URL.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.log_path = directory / f"redis-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = unit(10)
        waited = 0.0
        while not answers_ping("127.0.0.1", self.port):
            if self._process.poll() is not None or waited > deadline:
                self.stop()
                raise RuntimeError(
                    f"redis-server did not start on port {self.port}:\n"
                    + self.log_path.read_text(errors="replace")
                )
            waited += 0.05
            time.sleep(0.05)  # blocking: async tests call start() via asyncio.to_thread

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=unit(5))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("CHATGUARD_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if answers_ping(*LOCAL_REDIS):
        yield LOCAL_REDIS_URL
        return
    if shutil.which("redis-server") is not None:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
        return
    message = (
        "no Redis for the tests: set CHATGUARD_TEST_REDIS_URL, run Redis on "
        "127.0.0.1:6379, or install redis-server"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"chatguard-test:{uuid.uuid4().hex}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        doomed = list(client.scan_iter(match=prefix + "*", count=1000))
        if doomed:
            client.delete(*doomed)


@pytest_asyncio.fixture
async def redis_store_factory(
    redis_url: str, redis_prefix: str
) -> AsyncIterator[Callable[..., RedisStore]]:
    """Make RedisStores (as replicas would be) on this test's prefix by default."""
    stores: list[RedisStore] = []

    def make(url: str | None = None, key_prefix: str | None = None) -> RedisStore:
        store = RedisStore(url or redis_url, key_prefix or redis_prefix)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest_asyncio.fixture
async def redis_store(redis_store_factory: Callable[..., RedisStore]) -> RedisStore:
    return redis_store_factory()
