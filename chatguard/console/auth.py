"""Who is asking: bearer tokens for /api/, session cookies or a trusted SSO
header for the console pages, CSRF checks, and the sign-in rate limit.

What it owns: the ``Gate`` (identification, sign-in, sign-out) and the two
middlewares that refuse every unauthenticated request.

Invariants:

* Only the sign-in page is served without an account; the API answers 401
  with a JSON body, pages redirect a GET to sign-in and refuse anything else.
* A state-changing console request (anything but GET/HEAD/OPTIONS) must carry
  the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
  API requests are authenticated by a bearer header a browser never adds on
  its own, so they need no CSRF token.
* The SSO identity header is believed only from ``console.sso.trusted_proxies``
  and only for a configured account; from anywhere else it is ignored.
* Passwords and tokens never reach a log line.
* Bounded: at most ``MAX_VERIFYING`` argon2 checks run at once and
  ``MAX_SIGNING_IN`` sign-ins wait; more are answered 429 at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..config import ConsoleConfig
from ..metrics import Metrics
from ..stores import Store, StoreError
from .accounts import Account, Accounts
from .limits import SignInLimits
from .sessions import Session, Sessions, csrf_ok

COOKIE = "chatguard_console"
#: The pre-sign-in CSRF cookie: the sign-in form must echo it (double submit).
LOGIN_COOKIE = "chatguard_login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: argon2 verifications at once (each takes ~64 MiB and a core for a moment),
#: and sign-ins waiting for one; beyond that, sign-in answers "busy".
MAX_VERIFYING = 2
MAX_SIGNING_IN = 16

ACCOUNT = web.RequestKey("account", Account)
SESSION = web.RequestKey("session", Session)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SignInRefused(Exception):
    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(slots=True)
class Gate:
    config: ConsoleConfig
    accounts: Accounts
    sessions: Sessions
    limiter: SignInLimits
    clock: Callable[[], float]
    metrics: Metrics | None = None
    max_signing_in: int = MAX_SIGNING_IN
    _verifying: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_VERIFYING))
    _signing_in: int = 0

    @classmethod
    def build(
        cls,
        config: ConsoleConfig,
        accounts: Accounts,
        store: Store,
        clock: Callable[[], float],
        metrics: Metrics | None = None,
    ) -> Gate:
        return cls(
            config,
            accounts,
            Sessions(store, config.session_ttl, config.max_sessions),
            SignInLimits(store, config.login_max_failures, config.login_window),
            clock,
            metrics,
        )

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.console_sign_ins.labels(outcome=outcome).inc()

    # -- identification --------------------------------------------------------

    def bearer(self, request: web.Request) -> Account | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.accounts.by_token(token.strip())

    def trusted_proxy(self, remote: str | None) -> bool:
        if not remote:
            return False
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(net, strict=False)
            for net in self.config.sso.trusted_proxies
        )

    def sso_account(self, request: web.Request) -> Account | None:
        header = self.config.sso.header
        if not header or header not in request.headers:
            return None
        if not self.trusted_proxy(request.remote):
            return None
        return self.accounts.get(request.headers[header].strip())

    async def session_account(self, request: web.Request) -> tuple[Account, Session] | None:
        session = await self.sessions.get(request.cookies.get(COOKIE), self.clock())
        if session is None:
            return None
        account = self.accounts.get(session.account)
        if account is None:  # removed from the configuration since sign-in
            await self.sessions.close(session)
            return None
        return account, session

    async def identify(
        self, request: web.Request
    ) -> tuple[tuple[Account, Session] | None, Session | None]:
        """The signed-in account and session, and the session just opened for
        a trusted SSO identity (None when the cookie's session was used)."""
        found = await self.session_account(request)
        sso = self.sso_account(request)
        if sso is not None and (found is None or found[0].id != sso.id):
            session = await self.sessions.open(sso.id, self.clock(), via="sso")
            self._count("sso")
            return (sso, session), session
        return found, None

    # -- sign-in -----------------------------------------------------------------

    async def sign_in(self, account_id: str, password: str, address: str) -> Session:
        """A new session for a right password; ``SignInRefused`` otherwise.
        ``StoreError`` when the store cannot count failures (sign-in fails closed)."""
        keys = (f"account:{account_id}", f"address:{address}")
        wait = await self.limiter.retry_after(keys)
        if wait > 0:
            self._count("limited")
            raise SignInRefused("too many failed sign-ins; try again later", wait)
        if self._signing_in >= self.max_signing_in:
            self._count("limited")
            raise SignInRefused("sign-in is busy; try again in a moment", 1.0)
        self._signing_in += 1
        try:
            # argon2 is deliberately slow and large: off the event loop, a few at a time.
            async with self._verifying:
                account = await asyncio.to_thread(
                    self.accounts.check_password, account_id, password
                )
        finally:
            self._signing_in -= 1
        if account is None:
            await self.limiter.failed(keys)
            self._count("refused")
            raise SignInRefused("wrong moderator id or password")
        await self.limiter.succeeded(keys[0])
        self._count("ok")
        return await self.sessions.open(account.id, self.clock())

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(self.config.session_ttl),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.config.secure_cookies,
        )

    # -- middlewares -------------------------------------------------------------

    def api_middleware(self) -> Middleware:
        @web.middleware
        async def api_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            account = self.bearer(request)
            if account is None:
                return web.json_response(
                    {"error": "unauthorized", "detail": "a valid bearer token is required"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="chatguard"'},
                )
            request[ACCOUNT] = account
            return await handler(request)

        return api_auth

    def page_middleware(self, public: frozenset[str]) -> Middleware:
        @web.middleware
        async def page_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in public:
                return await handler(request)
            try:
                found, new_session = await self.identify(request)
            except StoreError:
                raise web.HTTPServiceUnavailable(
                    text="the session store is unavailable; try again shortly"
                ) from None
            if found is None:
                if request.method in SAFE_METHODS:
                    raise web.HTTPSeeOther(f"/console/login?next={request.path}")
                raise web.HTTPUnauthorized(text="sign in first")
            account, session = found
            if request.method not in SAFE_METHODS:
                presented = request.headers.get("X-CSRF-Token")
                if presented is None and request.content_type in (
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                ):
                    presented = str((await request.post()).get("csrf", ""))
                if new_session is not None or not csrf_ok(session, presented):
                    raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")
            request[ACCOUNT] = account
            request[SESSION] = session
            response = await handler(request)
            if new_session is not None:
                self.set_cookie(response, new_session)
            return response

        return page_auth
