"""The I/O ring: the only part of ChatGuard that touches client and upstream sockets."""

from __future__ import annotations

from .server import Relay
from .session import RelaySession

__all__ = ["Relay", "RelaySession"]
