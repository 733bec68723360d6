"""Shared fixtures. Each fixture family lives in its own module under
``tests/support`` and is registered here."""

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.probe",
    "tests.support.relay",
]
