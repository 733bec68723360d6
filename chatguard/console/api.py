"""The JSON API under /api/: everything the console does, for scripts and tools.

What it owns: routes, request parsing and JSON error bodies. Permission and
audit rules are ``service``'s, so the API and the pages never disagree.

Invariants: every route needs a bearer token (``auth.api_middleware``);
errors are ``{"error": code, "detail": text}`` with 400/401/403/404/409/501/503;
request bodies are bounded (``MAX_BODY``); docs/openapi.yaml lists exactly
these routes (tests/test_console_api.py checks it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..stores import StoreError
from .auth import ACCOUNT
from .service import ConsoleService, Refused
from .view import FilterError, parse_filters

MAX_BODY = 64 * 1024
SERVICE = web.AppKey("console_service", ConsoleService)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        return error(exc.status, exc.error, exc.detail)
    except FilterError as exc:
        return error(400, "bad_request", str(exc))
    except StoreError:
        # Cases live in the store; without it there is nothing to answer with.
        return error(503, "unavailable", "the state store is unavailable; try again shortly")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()  # bounded by client_max_size=MAX_BODY
    except web.HTTPRequestEntityTooLarge:
        raise Refused(400, "bad_request", f"body larger than {MAX_BODY} bytes") from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_request", "the body must be a JSON object")
    return body


def _service(request: web.Request) -> ConsoleService:
    return request.app[SERVICE]


async def me(request: web.Request) -> web.Response:
    return web.json_response(request[ACCOUNT].to_json())


async def list_cases(request: web.Request) -> web.Response:
    filters = parse_filters(request.query)
    cases = await _service(request).cases(request[ACCOUNT], filters)
    return web.json_response({"cases": [c.to_json() for c in cases]})


async def counts(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).counts(request[ACCOUNT]))


async def get_case(request: web.Request) -> web.Response:
    service = _service(request)
    case = await service.view(request[ACCOUNT], request.match_info["id"], via="api")
    body = case.to_json()
    # What the case page shows beside each participant; earlier cases by id.
    body["participant_history"] = [
        {**p, "cases": [c.id for c in p["cases"]]} for p in await service.participants(case)
    ]
    return web.json_response(body)


async def conversation(request: web.Request) -> web.Response:
    """The messages around the case's flagged ones, as the case page shows them."""
    service = _service(request)
    case = await service.view(request[ACCOUNT], request.match_info["id"], via="api")
    messages = [
        {
            "at": m.at,
            "sender": m.sender,
            "text": m.text,
            "spans": [list(span) for span in m.spans],
            "flagged": m.flagged,
        }
        for m in await service.excerpt(case)
    ]
    return web.json_response({"case": case.id, "messages": messages})


async def claim(request: web.Request) -> web.Response:
    case = await _service(request).claim(request[ACCOUNT], request.match_info["id"])
    return web.json_response(case.to_json())


async def release(request: web.Request) -> web.Response:
    case = await _service(request).release(request[ACCOUNT], request.match_info["id"])
    return web.json_response(case.to_json())


async def note(request: web.Request) -> web.Response:
    body = await _body(request)
    case = await _service(request).note(
        request[ACCOUNT], request.match_info["id"], body.get("text")
    )
    return web.json_response(case.to_json())


async def act(request: web.Request) -> web.Response:
    body = await _body(request)
    case = await _service(request).act(request[ACCOUNT], request.match_info["id"], body)
    return web.json_response(case.to_json())


async def capture(request: web.Request) -> web.Response:
    body = await _body(request)
    case = await _service(request).capture(
        request[ACCOUNT], request.match_info["id"], body.get("reason", "")
    )
    return web.json_response(case.to_json())


async def report(request: web.Request) -> web.Response:
    service, case_id = _service(request), request.match_info["id"]
    fmt = request.query.get("format", "json")
    if fmt == "xml":
        text = await service.report_xml(request[ACCOUNT], case_id)
        return web.Response(text=text, content_type="application/xml")
    if fmt != "json":
        raise Refused(400, "bad_request", "format: must be json or xml")
    _, body, items = await service.report(request[ACCOUNT], case_id)
    return web.json_response(
        {
            "report": body,
            "checklist": [{"item": i, "ok": ok, "detail": d} for i, ok, d in items],
            "complete": all(ok for _, ok, _ in items),
        }
    )


async def evidence(request: web.Request) -> web.Response:
    case_id = request.match_info["id"]
    bundle = await _service(request).export(request[ACCOUNT], case_id)
    return web.Response(
        body=bundle,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}-evidence.zip"'},
    )


async def analytics(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).analytics(request[ACCOUNT]))


async def no_store(request: web.Request, response: web.StreamResponse) -> None:
    # Case content and bundles must not linger in shared caches.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


async def webhooks(request: web.Request) -> web.Response:
    return web.json_response(_service(request).webhook_log(request[ACCOUNT]))


def api_app(service: ConsoleService, auth: Middleware) -> web.Application:
    """The /api sub-application; ``auth`` is ``Gate.api_middleware()``."""
    app = web.Application(middlewares=[json_errors, auth], client_max_size=MAX_BODY)
    app[SERVICE] = service
    app.on_response_prepare.append(no_store)
    r = app.router
    r.add_get("/me", me)
    r.add_get("/cases", list_cases)
    r.add_get("/cases/counts", counts)
    r.add_get("/cases/{id}", get_case)
    r.add_get("/cases/{id}/conversation", conversation)
    r.add_post("/cases/{id}/claim", claim)
    r.add_post("/cases/{id}/release", release)
    r.add_post("/cases/{id}/notes", note)
    r.add_post("/cases/{id}/actions", act)
    r.add_post("/cases/{id}/capture", capture)
    r.add_get("/cases/{id}/report", report)
    r.add_get("/cases/{id}/evidence", evidence)
    r.add_get("/analytics", analytics)
    r.add_get("/webhooks", webhooks)
    return app
