"""Wire-protocol codecs: pure translation between frames and chat events.

A codec never touches sockets, clocks or stores: frames in, events out;
notices in, frames out. The relay owns all I/O.
"""

from __future__ import annotations

from .base import Codec, CodecSession, MappingError
from .jsonchat import JsonChatCodec

__all__ = ["Codec", "CodecSession", "JsonChatCodec", "MappingError"]
