"""The admin listener: health, readiness and Prometheus metrics.

Invariants: these endpoints never touch chat content; ``/healthz`` answers
as long as the event loop runs; ``/readyz`` is 200 only when the upstream
accepts TCP connections and the state store answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .metrics import CONTENT_TYPE_LATEST, Metrics

Check = Callable[[], Awaitable[bool]]


def admin_app(metrics: Metrics, checks: dict[str, Check]) -> web.Application:
    """An application serving /healthz, /readyz and /metrics."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )

    async def metrics_endpoint(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
