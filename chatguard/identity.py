"""Identity attested before the upstream connection opens.

What it owns: reading a user's identity from (a) headers a trusted auth
gateway sets, or (b) a verified JWT. The third source, the upstream's welcome
frame, is read by the codec because only the codec understands frames.

Invariants:

* Nothing here trusts a client-chosen value unless the operator configured a
  source that vouches for it: a gateway header (the gateway strips client
  copies) or a JWT whose signature, expiry, audience and issuer verify.
* A token that fails verification yields ``IdentityError``; the relay refuses
  the connection (HTTP 401) rather than continuing without identity, because
  the operator asked for tokens.
* Pure apart from reading the key file once at construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jwt

from .config import ConfigError, IdentityConfig
from .events import Identity


class IdentityError(Exception):
    """The connection presented an identity that does not verify."""


class IdentityResolver:
    """Builds an ``Identity`` from a handshake's headers, query and cookies."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        self._jwt_key: str | None = None
        if config.jwt.enabled:
            key = config.jwt.key
            if config.jwt.key_file:
                try:
                    key = Path(config.jwt.key_file).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise ConfigError(
                        config.jwt.key_file, "identity.jwt.key_file", f"cannot read: {exc}"
                    ) from exc
            self._jwt_key = key

    @property
    def enabled(self) -> bool:
        return bool(self.config.header.user) or self._jwt_key is not None

    def resolve(
        self,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        cookies: Mapping[str, str],
    ) -> Identity | None:
        """The attested identity, None when no configured source applies."""
        found = self._from_header(headers)
        if found is not None:
            return found
        return self._from_jwt(headers, query, cookies)

    def _from_header(self, headers: Mapping[str, str]) -> Identity | None:
        spec = self.config.header
        if not spec.user:
            return None
        user = headers.get(spec.user)
        if not user:
            return None
        name = headers.get(spec.name, user) if spec.name else user
        attrs = {a: v for a, h in spec.attrs.items() if (v := headers.get(h))}
        return Identity(user, name, attrs, source="header")

    def _token(
        self, headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> str | None:
        spec = self.config.jwt
        value = headers.get(spec.header, "") if spec.header else ""
        if value.lower().startswith("bearer "):
            return value[7:].strip()
        if spec.query and query.get(spec.query):
            return query[spec.query]
        if spec.cookie and cookies.get(spec.cookie):
            return cookies[spec.cookie]
        return None

    def _from_jwt(
        self, headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> Identity | None:
        if self._jwt_key is None:
            return None
        token = self._token(headers, query, cookies)
        if token is None:
            return None
        spec = self.config.jwt
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=list(spec.algorithms),
                audience=spec.audience or None,
                issuer=spec.issuer or None,
                # An empty audience means "not checked", as documented; PyJWT
                # would otherwise refuse every token that carries `aud`.
                options={"require": ["exp", spec.user_claim], "verify_aud": bool(spec.audience)},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise IdentityError(f"token refused: {exc}") from exc
        user = claims.get(spec.user_claim)
        if not isinstance(user, str | int) or isinstance(user, bool) or user == "":
            raise IdentityError(f"token refused: claim {spec.user_claim!r} is not a user id")
        name = claims.get(spec.name_claim)
        attrs = {a: str(v) for a, c in spec.attr_claims.items() if (v := claims.get(c)) is not None}
        return Identity(str(user), str(name) if name else str(user), attrs, source="jwt")
