"""The console's HTML pages: sign-in, the queue, a case, its report, analytics.

What it owns: routes under /console, form parsing and rendering through the
Jinja2 templates in ``templates/`` (autoescaped: chat text is always
escaped, never trusted as markup). Permission and audit rules are
``service``'s.

Invariants: every form carries the session's CSRF token (checked by
``auth.page_middleware``); a refused request renders a page that says why,
with the status of the refusal; actions redirect back (POST/redirect/GET) so
a reload never repeats them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from ..stores import StoreError
from .accounts import Permission
from .auth import ACCOUNT, LOGIN_COOKIE, SESSION, Gate, SignInRefused
from .service import ACTION_TYPES, ConsoleService, Refused
from .view import SEVERITIES, STATUSES, FilterError, age, highlight, parse_filters

SERVICE = web.AppKey("console_service", ConsoleService)
GATE = web.AppKey("console_gate", Gate)
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
LOGIN_PATH = "/console/login"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chatguard.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["highlight"] = lambda m: highlight(m.text, m.spans)
    return env


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    account = request.get(ACCOUNT)
    session = request.get(SESSION)
    service = request.app[SERVICE]
    body = (
        request.app[TEMPLATES]
        .get_template(name)
        .render(
            account=account,
            csrf=session.csrf if session else "",
            may_act=bool(account and account.may(Permission.ACT)),
            may_analytics=bool(account and account.may(Permission.ANALYTICS)),
            now=service.clock(),
            age=age,
            message=FLASH.get(request.query.get("msg", ""), ""),
            **context,
        )
    )
    return web.Response(text=body, status=status, content_type="text/html")


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        return render(request, "error.html", exc.status, title=exc.error, detail=exc.detail)
    except FilterError as exc:
        return render(request, "error.html", 400, title="bad filter", detail=str(exc))
    except StoreError:
        detail = "The case store is unavailable; try again shortly."
        return render(request, "error.html", 503, title="unavailable", detail=detail)


#: What a page says after an action. A link carries only the key, so nobody can
#: put words of their own on a console page through a crafted URL.
FLASH = {
    "claimed": "Claimed.",
    "released": "Released to the queue.",
    "noted": "Note added.",
    "captured": "Conversation captured as evidence.",
    **{f"done-{t}": f"Done: {t}." for t in ACTION_TYPES},
}


def _back(case_id: str, flash: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/console/cases/{quote(case_id)}?{urlencode({'msg': flash})}")


def redirect(location: str) -> web.Response:
    """A 303 that can carry cookies (an HTTPException raised would lose them)."""
    return web.Response(status=303, headers={"Location": location})


# -- sign-in ---------------------------------------------------------------------


async def login_form(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    nxt = request.query.get("next", "/console/")
    response = render(
        request,
        "login.html",
        status,
        login_csrf=token,
        next=nxt if nxt.startswith("/console/") else "/console/",
        error=error,
        sso=bool(request.app[GATE].config.sso.header),
    )
    gate = request.app[GATE]
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=gate.config.secure_cookies,
        max_age=3600,
    )
    return response


async def login_get(request: web.Request) -> web.Response:
    return await login_form(request)


async def login_post(request: web.Request) -> web.StreamResponse:
    gate = request.app[GATE]
    form = await request.post()
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    presented = str(form.get("csrf", ""))
    if not cookie or not secrets.compare_digest(cookie, presented):
        return await login_form(request, "The sign-in form expired; please try again.", 403)
    account_id = str(form.get("id", "")).strip()
    password = str(form.get("password", ""))
    try:
        session = await gate.sign_in(account_id, password, request.remote or "unknown")
    except StoreError:
        return await login_form(
            request, "Sign-in is unavailable right now; try again shortly.", 503
        )
    except SignInRefused as exc:
        status = 429 if exc.retry_after else 401
        response = await login_form(request, exc.reason, status)
        if exc.retry_after:
            response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    nxt = str(form.get("next", "/console/"))
    response = redirect(nxt if nxt.startswith("/console/") else "/console/")
    gate.set_cookie(response, session)
    response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    await request.app[GATE].sessions.close(request[SESSION])
    response = redirect(LOGIN_PATH)
    response.del_cookie("chatguard_console", path="/")
    return response


# -- the queue ---------------------------------------------------------------------


async def queue(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    filters = parse_filters({k: v for k, v in request.query.items() if k != "msg"})
    cases = await service.cases(request[ACCOUNT], filters)
    counts = await service.counts(request[ACCOUNT])
    return render(
        request,
        "queue.html",
        cases=cases,
        counts=counts,
        filters=filters,
        statuses=STATUSES,
        severities=SEVERITIES,
    )


async def counts_json(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICE].counts(request[ACCOUNT]))


async def script(request: web.Request) -> web.Response:
    text = resources.files("chatguard.console").joinpath("static/console.js").read_text("utf-8")
    return web.Response(text=text, content_type="application/javascript")


# -- a case ------------------------------------------------------------------------


async def case_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    case = await service.view(request[ACCOUNT], request.match_info["id"], via="console")
    return render(
        request,
        "case.html",
        case=case,
        excerpt=await service.excerpt(case),
        participants=await service.participants(case),
        action_types=ACTION_TYPES,
        held_by_other=service.held_by_other(case, request[ACCOUNT]),
        may_capture=service.capturer is not None,
    )


async def case_post(request: web.Request) -> web.StreamResponse:
    service, account = request.app[SERVICE], request[ACCOUNT]
    case_id, what = request.match_info["id"], request.match_info["what"]
    form = await request.post()
    if what == "claim":
        await service.claim(account, case_id)
        raise _back(case_id, "claimed")
    if what == "release":
        await service.release(account, case_id)
        raise _back(case_id, "released")
    if what == "notes":
        await service.note(account, case_id, form.get("text"))
        raise _back(case_id, "noted")
    if what == "actions":
        body = {k: str(v) for k, v in form.items() if k != "csrf"}
        if body.get("permanent"):
            body["duration"] = ""
        await service.act(account, case_id, body)
        raise _back(case_id, f"done-{body.get('type')}")
    if what == "capture":
        await service.capture(account, case_id, str(form.get("reason", "")))
        raise _back(case_id, "captured")
    raise web.HTTPNotFound()


async def report_page(request: web.Request) -> web.Response:
    case, body, items = await request.app[SERVICE].report(
        request[ACCOUNT], request.match_info["id"]
    )
    return render(
        request,
        "report.html",
        case=case,
        report_json=json.dumps(body, indent=2, ensure_ascii=False),
        checklist=items,
        complete=all(ok for _, ok, _ in items),
    )


async def report_download(request: web.Request) -> web.Response:
    service, case_id = request.app[SERVICE], request.match_info["id"]
    if request.match_info["fmt"] == "xml":
        text = await service.report_xml(request[ACCOUNT], case_id)
        content_type = "application/xml"
    else:
        _, body, items = await service.report(request[ACCOUNT], case_id)
        text = json.dumps({"report": body, "checklist": items}, indent=2, ensure_ascii=False)
        content_type = "application/json"
    name = f"case-{case_id}-report.{request.match_info['fmt']}"
    return web.Response(
        text=text,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def evidence_download(request: web.Request) -> web.Response:
    case_id = request.match_info["id"]
    bundle = await request.app[SERVICE].export(request[ACCOUNT], case_id)
    return web.Response(
        body=bundle,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}-evidence.zip"'},
    )


async def analytics_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    figures = await service.analytics(request[ACCOUNT])
    hooks = service.webhook_log(request[ACCOUNT])
    return render(request, "analytics.html", figures=figures, webhooks=hooks)


#: Sent with every console response: no framing (one-click actions must not be
#: clickjacked), scripts only from the console itself, nothing cached or leaked
#: through the Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def pages_app(service: ConsoleService, gate: Gate) -> web.Application:
    """The /console sub-application."""
    app = web.Application(
        middlewares=[html_errors, gate.page_middleware(frozenset({LOGIN_PATH}))],
        client_max_size=64 * 1024,
    )
    app[SERVICE] = service
    app[GATE] = gate
    app[TEMPLATES] = environment()
    app.on_response_prepare.append(security_headers)
    r = app.router
    r.add_get("/login", login_get)
    r.add_post("/login", login_post)
    r.add_post("/logout", logout)
    r.add_get("/", queue)
    r.add_get("/counts.json", counts_json)
    r.add_get("/static/console.js", script)
    r.add_get("/cases/{id}", case_page)
    r.add_post("/cases/{id}/{what:claim|release|notes|actions|capture}", case_post)
    r.add_get("/cases/{id}/report", report_page)
    r.add_get("/cases/{id}/report.{fmt:json|xml}", report_download)
    r.add_get("/cases/{id}/evidence", evidence_download)
    r.add_get("/analytics", analytics_page)
    return app
