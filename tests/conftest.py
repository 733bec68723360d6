"""Shared fixtures. Each fixture family lives in its own module under
``tests/support`` and is registered here."""

import os

import pytest

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.probe",
    "tests.support.relay",
    "tests.support.pack",
    "tests.support.prosody",
    "tests.support.console",
    "tests.support.ngircd",
    "tests.support.ircclient",
    "tests.support.cache",
]

_PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)


@pytest.fixture(autouse=True, scope="session")
def _no_proxies():
    """Every test talks to loopback peers; a proxy from the environment must not intercept."""
    saved = {name: os.environ.pop(name) for name in _PROXY_VARIABLES if name in os.environ}
    yield
    os.environ.update(saved)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run only when asked for: ``-m slow`` (make test-slow)
    or ``CHATGUARD_SLOW_TESTS=1``; the default run stays fast."""
    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("CHATGUARD_SLOW_TESTS"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
