"""The example chat service: a small, real multi-room chat server.

ChatGuard's demo and tests run this as the *upstream* behind the sidecar, so its
wire protocol is a contract that other tests depend on.

WebSocket, ``ws://HOST:PORT/ws?user=NAME&age=N`` (demo sign-in; ``age`` optional,
``locale=es`` optional (sent as ``user.locale``), ``echo_headers=1`` adds the
handshake's request headers to the welcome). A
missing or invalid ``user`` is accepted and then closed with 1008 and a reason,
so that a browser can show why. All frames are JSON text:

* server first: ``welcome {user: {id, name, age_band}}``, ``age_band`` being
  ``minor`` (< 18), ``adult`` (>= 18) or ``unknown`` (absent, not a whole
  number, or over 150);
* client: ``join {room}``, ``leave {room}``, ``message {room, text}``,
  ``dm {to, text}``;
* server: ``joined``/``left {room, user}`` to the room's members including the
  user concerned, ``message {id, room, from, text, ts}`` to the room's members
  including the sender, ``dm {id, from, to, text, ts}`` to both parties, and
  ``error {reason}`` for any frame it cannot act on (``chatguard.*`` types are
  unknown types here: the sidecar is meant to consume them).

Subprotocols ``chat.v2`` and ``chat.v1`` are negotiated in that order of
preference; a client offering neither gets none. Plain HTTP on the same port:
``GET /`` (the browser page), ``GET /api/rooms``, ``GET /api/echo-headers`` and
``POST /api/echo``, the last two for testing a reverse proxy's passthrough.

Test aids (in-process only, never on the wire): ``close_user()``,
``connections`` and ``frames_received``.

Invariants:

* A bad frame never raises and never closes the connection: the sending
  connection alone gets one ``error`` frame back.
* Room membership belongs to a user, not to a connection. A user may have
  several live connections; each receives every frame addressed to that user.
  The user leaves their rooms when their last connection goes.
* Every frame toward a connection goes through that connection's bounded
  outbox, in order. A connection whose outbox overflows is closed with 1013
  rather than making every sender wait for it.
* ``ChatRooms`` is the pure core: it does no I/O and reads no clock. All state
  lives in instances; nothing here is a module-level singleton.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

SUBPROTOCOLS = (Subprotocol("chat.v2"), Subprotocol("chat.v1"))
DEFAULT_MAX_FRAME = 64 * 1024
DEFAULT_MAX_TEXT = 4000
DEFAULT_SEND_QUEUE = 256
FRAMES_KEPT = 1000
MAX_ROOM_NAME = 64
MAX_ECHO_BODY = 64 * 1024
_MAX_REQUEST_HEAD = 16 * 1024
_USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_AGE = re.compile(r"[0-9]{1,3}")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")

_log = logging.getLogger(__name__)


# --- pure core -------------------------------------------------------------------


class BadFrame(ValueError):
    """A client frame the service cannot act on; its message is the error reason."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outgoing frame and who gets it.

    ``to`` names users (every live connection of each gets a copy); ``None``
    means only the connection whose frame caused this delivery.
    """

    frame: Mapping[str, Any]
    to: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    user: str
    age_band: str
    echo_headers: bool
    locale: str | None = None


def age_band(age: str | None) -> str:
    if age is None or not _AGE.fullmatch(age) or int(age) > 150:
        return "unknown"
    return "minor" if int(age) < 18 else "adult"


def parse_sign_in(target: str) -> SignIn:
    """Read the demo sign-in from a handshake's request target; BadFrame if invalid."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    if "user" not in query:
        raise BadFrame("missing user")
    user = query["user"][0]
    if not _USER_NAME.fullmatch(user):
        raise BadFrame("invalid user: use 1-32 letters, digits, '_', '.' or '-'")
    age = query.get("age", [None])[0]
    locale = query.get("locale", [None])[0]
    if locale is not None and not _LOCALE.fullmatch(locale):
        raise BadFrame("invalid locale: use a language tag such as es or pt-BR")
    return SignIn(user, age_band(age), query.get("echo_headers", [""])[0] == "1", locale)


def iso_utc(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ChatRooms:
    """Who is online, who is in which room, and what each client frame causes."""

    def __init__(self, max_text: int = DEFAULT_MAX_TEXT) -> None:
        self.max_text = max_text
        self._members: dict[str, set[str]] = {}  # room -> users; never an empty set
        self._online: dict[str, int] = {}  # user -> live connections
        self._last_id = 0

    def is_online(self, user: str) -> bool:
        return user in self._online

    def rooms(self) -> list[dict[str, Any]]:
        return [
            {"room": room, "members": sorted(members)}
            for room, members in sorted(self._members.items())
        ]

    def connect(self, user: str) -> None:
        self._online[user] = self._online.get(user, 0) + 1

    def disconnect(self, user: str) -> list[Delivery]:
        remaining = self._online.pop(user) - 1
        if remaining:
            self._online[user] = remaining
            return []
        rooms = sorted(room for room, members in self._members.items() if user in members)
        return [self._leave(room, user) for room in rooms]

    def handle(self, user: str, raw: str | bytes, now: datetime) -> list[Delivery]:
        try:
            return self._handle(user, _decode(raw), now)
        except BadFrame as exc:
            return [Delivery({"type": "error", "reason": str(exc)})]

    def _handle(self, user: str, frame: Mapping[str, Any], now: datetime) -> list[Delivery]:
        kind = _string(frame, "type")
        if kind == "join":
            return self._join(self._room(frame), user)
        if kind == "leave":
            room = self._room(frame)
            if user not in self._members.get(room, ()):
                raise BadFrame(f"not in room: {room}")
            return [self._leave(room, user)]
        if kind == "message":
            room = self._room(frame)
            text = self._text(frame)
            members = self._members.get(room, set())
            if user not in members:
                raise BadFrame(f"not in room: {room}")
            out = {"type": "message", "id": self._next_id(), "room": room, "from": user}
            return [Delivery({**out, "text": text, "ts": iso_utc(now)}, frozenset(members))]
        if kind == "dm":
            to = _string(frame, "to")
            text = self._text(frame)
            if to not in self._online:
                raise BadFrame(f"user not online: {to}")
            out = {"type": "dm", "id": self._next_id(), "from": user, "to": to}
            return [Delivery({**out, "text": text, "ts": iso_utc(now)}, frozenset({user, to}))]
        raise BadFrame(f"unknown type: {kind}")

    def _join(self, room: str, user: str) -> list[Delivery]:
        joined = {"type": "joined", "room": room, "user": user}
        members = self._members.setdefault(room, set())
        if user in members:
            # Idempotent, so that a user's second tab can "join" and be told it is in.
            return [Delivery(joined)]
        members.add(user)
        return [Delivery(joined, frozenset(members))]

    def _leave(self, room: str, user: str) -> Delivery:
        members = self._members[room]
        to = frozenset(members)  # taken before removal: the leaver hears it too
        members.discard(user)
        if not members:
            del self._members[room]
        return Delivery({"type": "left", "room": room, "user": user}, to)

    def _room(self, frame: Mapping[str, Any]) -> str:
        room = _string(frame, "room")
        if not room:
            raise BadFrame("empty room name")
        if len(room) > MAX_ROOM_NAME:
            raise BadFrame(f"room name longer than {MAX_ROOM_NAME} characters")
        return room

    def _text(self, frame: Mapping[str, Any]) -> str:
        text = _string(frame, "text")
        if not text:
            raise BadFrame("empty text")
        if len(text) > self.max_text:
            raise BadFrame(f"text longer than {self.max_text} characters")
        return text

    def _next_id(self) -> str:
        self._last_id += 1
        return f"m-{self._last_id}"


def _decode(raw: str | bytes) -> Mapping[str, Any]:
    if isinstance(raw, bytes):
        raise BadFrame("binary frames are not supported")
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested input
        raise BadFrame("malformed JSON") from None
    if not isinstance(frame, dict):
        raise BadFrame("frame must be a JSON object")
    return frame


def _string(frame: Mapping[str, Any], name: str) -> str:
    if name not in frame:
        raise BadFrame(f"missing field: {name}")
    value = frame[name]
    if not isinstance(value, str):
        raise BadFrame(f"field must be a string: {name}")
    return value


# --- HTTP helpers ----------------------------------------------------------------


def _response(
    status: HTTPStatus, body: bytes = b"", content_type: str = "text/plain; charset=utf-8"
) -> Response:
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _json_response(payload: object) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return _response(HTTPStatus.OK, body, "application/json")


def header_dict(headers: Headers) -> dict[str, str]:
    """Request headers with lower-cased names; repeated headers joined with ", "."""
    out: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, path and headers (lower-cased names, last value wins) of a request head."""
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, *_ = [*request_line.split(" "), "", ""]
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, urlsplit(target).path, headers


def _has_body(headers: Mapping[str, str]) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").lstrip("0") != ""


def _answer_with_body(
    method: str, path: str, headers: Mapping[str, str], body: bytes
) -> Response | None:
    """The response to a request that has a body, or None while body bytes are missing."""
    if "transfer-encoding" in headers:
        return _response(HTTPStatus.LENGTH_REQUIRED, b"send a Content-Length body\n")
    if path != "/api/echo":
        return _response(HTTPStatus.NOT_FOUND, b"not found\n")
    if method != "POST":
        return _response(HTTPStatus.METHOD_NOT_ALLOWED, b"use POST\n")
    length = headers["content-length"]
    if not length.isdigit():
        return _response(HTTPStatus.BAD_REQUEST, b"bad Content-Length\n")
    if int(length) > MAX_ECHO_BODY:
        return _response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"body too large\n")
    if len(body) < int(length):
        return None
    content_type = headers.get("content-type", "application/octet-stream")
    return _response(HTTPStatus.OK, body[: int(length)], content_type)


class _BodyAwareConnection(ServerConnection):
    """A connection that answers requests with a body itself.

    websockets parses HTTP only as far as a handshake needs and rejects any
    request with a body, so ``POST /api/echo`` could not be served through
    ``process_request``. This class reads the request head before websockets
    does: a request announcing a body is answered here and the connection
    closed; anything else is handed to websockets byte for byte, so handshakes
    and GET routes behave exactly as without it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer: bytearray | None = bytearray()  # None once handed to websockets
        self._answered = False

    def data_received(self, data: bytes) -> None:
        if self._buffer is None:
            super().data_received(data)
            return
        if self._answered:
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_REQUEST_HEAD:
                self._hand_over()  # let websockets reject it
            return
        method, path, headers = _parse_head(bytes(self._buffer[:end]))
        if not _has_body(headers):
            self._hand_over()
            return
        response = _answer_with_body(method, path, headers, bytes(self._buffer[end + 4 :]))
        if response is not None:
            self._answered = True
            self.transport.write(response.serialize())
            self.transport.close()

    def _hand_over(self) -> None:
        buffered, self._buffer = bytes(self._buffer or b""), None
        super().data_received(buffered)


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    return next((p for p in SUBPROTOCOLS if p in offered), None)


# --- the service -----------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Peer:
    user: str
    ws: ServerConnection
    outbox: asyncio.Queue[str | None]  # None: overflowed, close the connection
    done: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False


class ChatService:
    """The chat server on one host and port (0 picks a free port at ``start()``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_text: int = DEFAULT_MAX_TEXT,
        send_queue: int = DEFAULT_SEND_QUEUE,
    ) -> None:
        if send_queue < 1:
            raise ValueError("send_queue must be at least 1")
        self.host = host
        self.port = port
        self.max_frame = max_frame
        self.send_queue = send_queue
        #: Test aid: the last raw frames received from clients, oldest first.
        self.frames_received: deque[str | bytes] = deque(maxlen=FRAMES_KEPT)
        self._rooms = ChatRooms(max_text)
        self._peers: dict[str, set[_Peer]] = {}
        self._server: Server | None = None
        self._page = (Path(__file__).parent / "static" / "index.html").read_bytes()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Test aid: live, signed-in WebSocket connections."""
        return sum(len(peers) for peers in self._peers.values())

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            select_subprotocol=_select_subprotocol,
            process_request=self._route_http,
            max_size=self.max_frame,
            create_connection=_BodyAwareConnection,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        _log.info("chat service listening on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Close every connection with 1001 and stop listening."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def close_user(
        self, user: str, code: int = CloseCode.NORMAL_CLOSURE, reason: str = ""
    ) -> int:
        """Test aid: close all of ``user``'s connections; returns once they are cleaned up."""
        peers = list(self._peers.get(user, ()))
        await asyncio.gather(*(peer.ws.close(code, reason) for peer in peers))
        await asyncio.gather(*(peer.done.wait() for peer in peers))
        return len(peers)

    def _route_http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if request.method == "POST" and path == "/api/echo":
            # Only an empty POST gets here; _BodyAwareConnection answers the others.
            content_type = request.headers.get("Content-Type", "application/octet-stream")
            return _response(HTTPStatus.OK, b"", content_type)
        if request.method != "GET":
            return _response(HTTPStatus.METHOD_NOT_ALLOWED, b"use GET\n")
        if path == "/ws":
            return None  # the WebSocket handshake proper
        if path == "/":
            return _response(HTTPStatus.OK, self._page, "text/html; charset=utf-8")
        if path == "/api/rooms":
            return _json_response({"rooms": self._rooms.rooms()})
        if path == "/api/echo-headers":
            return _json_response(header_dict(request.headers))
        return _response(HTTPStatus.NOT_FOUND, b"not found\n")

    async def _serve_connection(self, ws: ServerConnection) -> None:
        assert ws.request is not None  # the handler only runs after a handshake
        try:
            sign_in = parse_sign_in(ws.request.path)
        except BadFrame as exc:
            await ws.close(CloseCode.POLICY_VIOLATION, str(exc))
            return
        peer = _Peer(sign_in.user, ws, asyncio.Queue(self.send_queue))
        self._peers.setdefault(peer.user, set()).add(peer)
        self._rooms.connect(peer.user)
        writer = asyncio.create_task(self._write(peer))
        try:
            user = {"id": peer.user, "name": peer.user, "age_band": sign_in.age_band}
            if sign_in.locale:
                user["locale"] = sign_in.locale
            welcome: dict[str, Any] = {"type": "welcome", "user": user}
            if sign_in.echo_headers:
                welcome["headers"] = header_dict(ws.request.headers)
            self._deliver(peer, [Delivery(welcome)])
            async for raw in ws:
                self.frames_received.append(raw)
                self._deliver(peer, self._rooms.handle(peer.user, raw, datetime.now(UTC)))
        except ConnectionClosed:
            pass  # an abnormal close is still just the end of this connection
        finally:
            self._peers[peer.user].discard(peer)
            if not self._peers[peer.user]:
                del self._peers[peer.user]
            self._deliver(peer, self._rooms.disconnect(peer.user))
            writer.cancel()
            await asyncio.wait([writer])
            peer.done.set()

    async def _write(self, peer: _Peer) -> None:
        try:
            while (text := await peer.outbox.get()) is not None:
                await peer.ws.send(text)
            await peer.ws.close(CloseCode.TRY_AGAIN_LATER, "send queue full")
        except ConnectionClosed:
            pass

    def _deliver(self, origin: _Peer, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            text = json.dumps(delivery.frame, ensure_ascii=False, separators=(",", ":"))
            if delivery.to is None:
                self._enqueue(origin, text)
                continue
            for user in delivery.to:
                for peer in self._peers.get(user, ()):
                    self._enqueue(peer, text)

    def _enqueue(self, peer: _Peer, text: str) -> None:
        if peer.overflowed:
            return
        try:
            peer.outbox.put_nowait(text)
        except asyncio.QueueFull:
            peer.overflowed = True
            while not peer.outbox.empty():
                peer.outbox.get_nowait()
            peer.outbox.put_nowait(None)


# --- command line ----------------------------------------------------------------


async def _serve_until_signalled(service: ChatService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chatguard_examples.chat_service",
        description="Run the example chat service until SIGINT or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--max-frame", type=int, default=DEFAULT_MAX_FRAME, help="bytes")
    parser.add_argument("--max-text", type=int, default=DEFAULT_MAX_TEXT, help="characters")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    service = ChatService(args.host, args.port, max_frame=args.max_frame, max_text=args.max_text)
    asyncio.run(_serve_until_signalled(service))


if __name__ == "__main__":
    main()
