"""One cache directory for the whole test session.

Loading the default pack judges every rule regex and compiles its Hyperscan
database: tens of seconds, each time. The ``chatguard policy`` commands keep
both in ``$XDG_CACHE_HOME/chatguard``; for the session that variable points
into a temporary directory, so commands run by tests share one cache and
never write into the home of whoever runs them. ``pack_cache`` is the same
directory, for tests that load the default pack themselves. The cache only
saves time (``chatguard/policy/safety_cache.py``, ``matcher.py``), so sharing
it cannot change what a test sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatguard.cli_policy import default_cache_dir


@pytest.fixture(autouse=True, scope="session")
def pack_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's cache directory, for ``load_policy`` and ``build_matcher``."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield default_cache_dir()
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved
