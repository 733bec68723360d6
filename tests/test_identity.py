"""Identity from a trusted gateway header or a verified JWT.

Tokens are real: keys are generated with ``cryptography`` and tokens signed
with PyJWT (or, for forgeries PyJWT refuses to make, assembled by hand).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from chatguard.config import IdentityConfig, from_mapping
from chatguard.events import Identity
from chatguard.identity import IdentityError, IdentityResolver

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
        "other-EdDSA": ed25519.Ed25519PrivateKey.generate(),
        "other-RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


def identity_config(**sections: Any) -> IdentityConfig:
    return from_mapping({"identity": sections}).identity


def resolver(**sections: Any) -> IdentityResolver:
    return IdentityResolver(identity_config(**sections))


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 600}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def resolve(
    r: IdentityResolver,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
) -> Identity | None:
    """Resolve as the relay does, with aiohttp's header and query types."""
    return r.resolve(
        CIMultiDictProxy(CIMultiDict(headers or {})),
        MultiDictProxy(MultiDict(query or {})),
        dict(cookies or {}),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to sign (a forgery)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# -- gateway headers --------------------------------------------------------------


def test_nothing_is_trusted_by_default() -> None:
    r = IdentityResolver(IdentityConfig())
    assert r.enabled is False
    assert resolve(r, {"X-User-Id": "alice", "Authorization": "Bearer x.y.z"}) is None


HEADER_SPEC = {"user": "X-User-Id", "name": "X-User-Name", "attrs": {"age_band": "X-Age-Band"}}

HEADER_CASES: list[tuple[str, dict[str, str], Identity | None]] = [
    (
        "all headers",
        {"X-User-Id": "alice", "X-User-Name": "Alice", "X-Age-Band": "minor"},
        Identity("alice", "Alice", {"age_band": "minor"}, source="header"),
    ),
    (
        "header names are case-insensitive",
        {"x-user-id": "alice", "X-USER-NAME": "Alice"},
        Identity("alice", "Alice", {}, source="header"),
    ),
    ("no name", {"X-User-Id": "bob"}, Identity("bob", "bob", {}, source="header")),
    (
        "empty attribute is omitted",
        {"X-User-Id": "bob", "X-Age-Band": ""},
        Identity("bob", "bob", {}, source="header"),
    ),
    ("no user header", {"X-User-Name": "Alice", "X-Age-Band": "adult"}, None),
    ("empty user header", {"X-User-Id": ""}, None),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [pytest.param(h, e, id=name) for name, h, e in HEADER_CASES],
)
def test_gateway_headers(headers: dict[str, str], expected: Identity | None) -> None:
    r = resolver(header=HEADER_SPEC)
    assert r.enabled is True
    assert resolve(r, headers) == expected


def test_gateway_header_wins_over_a_token(keys: dict[str, PrivateKey]) -> None:
    r = resolver(
        header={"user": "X-User-Id"},
        jwt={"enabled": True, "key": public_pem(keys["EdDSA"])},
    )
    token = jwt.encode(claims(sub="bob"), keys["EdDSA"], algorithm="EdDSA")
    got = resolve(r, {"X-User-Id": "alice", **bearer(token)})
    assert got == Identity("alice", "alice", {}, source="header")
    # Without the gateway header, the token decides.
    got = resolve(r, bearer(token))
    assert got is not None
    assert (got.user_id, got.source) == ("bob", "jwt")


# -- verified tokens ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_valid_token_of_each_default_algorithm(keys: dict[str, PrivateKey], alg: str) -> None:
    r = resolver(jwt={"enabled": True, "key": public_pem(keys[alg])})
    assert r.enabled is True
    token = jwt.encode(claims(name="Alice"), keys[alg], algorithm=alg)
    assert resolve(r, bearer(token)) == Identity("alice", "Alice", {}, source="jwt")


def test_a_shared_secret_token() -> None:
    r = resolver(
        jwt={"enabled": True, "key": "a-long-shared-secret-of-32-bytes!", "algorithms": ["HS256"]}
    )
    token = jwt.encode(claims(), "a-long-shared-secret-of-32-bytes!", algorithm="HS256")
    assert resolve(r, bearer(token)) == Identity("alice", "alice", {}, source="jwt")


def test_the_key_can_come_from_a_file(keys: dict[str, PrivateKey], tmp_path: Path) -> None:
    path = tmp_path / "jwt.pem"
    path.write_text(public_pem(keys["ES256"]))
    r = resolver(jwt={"enabled": True, "key_file": str(path), "algorithms": ["ES256"]})
    token = jwt.encode(claims(), keys["ES256"], algorithm="ES256")
    got = resolve(r, bearer(token))
    assert got is not None
    assert got.user_id == "alice"


def test_claims_map_to_name_and_attributes(keys: dict[str, PrivateKey]) -> None:
    r = resolver(
        jwt={
            "enabled": True,
            "key": public_pem(keys["EdDSA"]),
            "user_claim": "uid",
            "name_claim": "nick",
            "attr_claims": {"age_band": "age_group", "age": "age", "region": "region"},
        }
    )
    token = jwt.encode(
        claims(sub=None, uid=42, nick="Ally", age_group="minor", age=15),
        keys["EdDSA"],
        algorithm="EdDSA",
    )
    assert resolve(r, bearer(token)) == Identity(
        "42", "Ally", {"age_band": "minor", "age": "15"}, source="jwt"
    )


@pytest.fixture
def ed_resolver(keys: dict[str, PrivateKey]) -> IdentityResolver:
    return resolver(
        jwt={
            "enabled": True,
            "key": public_pem(keys["EdDSA"]),
            "query": "access_token",
            "cookie": "chat_jwt",
        }
    )


@pytest.fixture
def good(keys: dict[str, PrivateKey]) -> str:
    return jwt.encode(claims(), keys["EdDSA"], algorithm="EdDSA")


@pytest.mark.parametrize(
    "where",
    [
        "header",
        "lowercase bearer",
        "query",
        "cookie",
    ],
)
def test_token_from_header_query_or_cookie(
    ed_resolver: IdentityResolver, good: str, where: str
) -> None:
    place: dict[str, dict[str, str]] = {
        "header": {"headers": bearer(good)},
        "lowercase bearer": {"headers": {"authorization": f"bearer  {good} "}},
        "query": {"query": {"access_token": good}},
        "cookie": {"cookies": {"chat_jwt": good}},
    }[where]
    got = resolve(ed_resolver, **place)
    assert got is not None
    assert (got.user_id, got.source) == ("alice", "jwt")


def test_the_header_comes_before_query_and_cookie(
    ed_resolver: IdentityResolver, good: str, keys: dict[str, PrivateKey]
) -> None:
    forged = jwt.encode(claims(sub="mallory"), keys["other-EdDSA"], algorithm="EdDSA")
    with pytest.raises(IdentityError):
        resolve(ed_resolver, bearer(forged), {"access_token": good}, {"chat_jwt": good})
    got = resolve(ed_resolver, {}, {"access_token": good}, {"chat_jwt": forged})
    assert got is not None
    assert got.user_id == "alice"


@pytest.mark.parametrize(
    ("headers", "query", "cookies"),
    [
        ({}, {}, {}),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, {}, {}),
        ({}, {"token": "x"}, {"session": "x"}),
        ({}, {"access_token": ""}, {"chat_jwt": ""}),
    ],
)
def test_no_token_is_no_identity(
    ed_resolver: IdentityResolver,
    headers: dict[str, str],
    query: dict[str, str],
    cookies: dict[str, str],
) -> None:
    assert resolve(ed_resolver, headers, query, cookies) is None


def test_another_header_or_none(keys: dict[str, PrivateKey]) -> None:
    token = jwt.encode(claims(), keys["EdDSA"], algorithm="EdDSA")
    r = resolver(jwt={"enabled": True, "key": public_pem(keys["EdDSA"]), "header": "X-Chat-Token"})
    assert resolve(r, bearer(token)) is None
    got = resolve(r, {"X-Chat-Token": f"Bearer {token}"})
    assert got is not None
    assert got.user_id == "alice"
    r = resolver(
        jwt={"enabled": True, "key": public_pem(keys["EdDSA"]), "header": "", "cookie": "t"}
    )
    assert resolve(r, bearer(token)) is None
    assert resolve(r, cookies={"t": token}) is not None


def test_a_token_within_the_clock_leeway_is_accepted(keys: dict[str, PrivateKey]) -> None:
    r = resolver(jwt={"enabled": True, "key": public_pem(keys["EdDSA"])})
    token = jwt.encode(claims(exp=int(time.time()) - 10), keys["EdDSA"], algorithm="EdDSA")
    assert resolve(r, bearer(token)) is not None


AUD_ISS = {"aud": "chat", "iss": "https://login.example"}


def forged_token(keys: dict[str, PrivateKey], case: str) -> str:
    """A token with exactly one thing wrong with it."""
    now = int(time.time())

    def sign(key: PrivateKey = keys["EdDSA"], alg: str = "EdDSA", **extra: Any) -> str:
        return jwt.encode(claims(**{**AUD_ISS, **extra}), key, algorithm=alg)

    if case == "expired":
        return sign(exp=now - 120)
    if case == "no expiry":
        return sign(exp=None)
    if case == "not yet valid":
        return sign(nbf=now + 600)
    if case == "wrong audience":
        return sign(aud="billing")
    if case == "no audience":
        return sign(aud=None)
    if case == "wrong issuer":
        return sign(iss="https://evil.example")
    if case == "no issuer":
        return sign(iss=None)
    if case == "wrong key":
        return sign(keys["other-EdDSA"])
    if case == "tampered":
        header, _payload, signature = sign().split(".")
        payload = b64(json.dumps(claims(**AUD_ISS, sub="admin")).encode())
        return f"{header}.{payload}.{signature}"
    if case == "alg none":
        return hand_made({"alg": "none", "typ": "JWT"}, claims(**AUD_ISS), None)
    if case == "RS256 with another key":
        return sign(keys["other-RS256"], "RS256")
    if case == "no user claim":
        return sign(sub=None)
    if case == "user claim not a string":
        return sign(sub=7)
    if case == "garbage":
        return "not.a.token"
    if case == "empty":
        return ""
    raise AssertionError(case)


FORGERIES = [
    "expired",
    "no expiry",
    "not yet valid",
    "wrong audience",
    "no audience",
    "wrong issuer",
    "no issuer",
    "wrong key",
    "tampered",
    "alg none",
    "RS256 with another key",
    "no user claim",
    "user claim not a string",
    "garbage",
    "empty",
]


@pytest.fixture
def strict_resolver(keys: dict[str, PrivateKey]) -> IdentityResolver:
    return resolver(
        jwt={
            "enabled": True,
            "key": public_pem(keys["EdDSA"]),
            "audience": "chat",
            "issuer": "https://login.example",
        }
    )


def test_the_control_token_is_accepted(
    strict_resolver: IdentityResolver, keys: dict[str, PrivateKey]
) -> None:
    token = jwt.encode(claims(**AUD_ISS), keys["EdDSA"], algorithm="EdDSA")
    assert resolve(strict_resolver, bearer(token)) == Identity("alice", "alice", source="jwt")


@pytest.mark.parametrize("case", FORGERIES)
def test_a_token_that_does_not_verify_is_refused(
    strict_resolver: IdentityResolver, keys: dict[str, PrivateKey], case: str
) -> None:
    with pytest.raises(IdentityError, match="token refused"):
        resolve(strict_resolver, bearer(forged_token(keys, case)))


@pytest.mark.parametrize("user", [True, "", ["alice"], {"id": "alice"}, None])
def test_a_user_claim_that_is_not_a_user_id_is_refused(
    keys: dict[str, PrivateKey], user: Any
) -> None:
    r = resolver(jwt={"enabled": True, "key": public_pem(keys["EdDSA"]), "user_claim": "uid"})
    payload = claims(sub=None)
    payload["uid"] = user
    token = jwt.encode(payload, keys["EdDSA"], algorithm="EdDSA")
    with pytest.raises(IdentityError, match="token refused"):
        resolve(r, bearer(token))


@pytest.mark.parametrize("accepted", [["RS256"], ["RS256", "HS256"]])
def test_algorithm_confusion_is_refused(keys: dict[str, PrivateKey], accepted: list[str]) -> None:
    """An HS256 token 'signed' with the RSA public key as the shared secret."""
    pem = public_pem(keys["RS256"])
    r = resolver(jwt={"enabled": True, "key": pem, "algorithms": accepted})
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, claims(sub="admin"), pem.encode())
    with pytest.raises(IdentityError, match="token refused"):
        resolve(r, bearer(forged))
    # The genuine RS256 token still works.
    good = jwt.encode(claims(), keys["RS256"], algorithm="RS256")
    assert resolve(r, bearer(good)) is not None


@pytest.mark.parametrize(("alg", "accepted"), [("ES256", ["EdDSA"]), ("HS256", ["RS256"])])
def test_an_algorithm_not_listed_is_refused(
    keys: dict[str, PrivateKey], alg: str, accepted: list[str]
) -> None:
    r = resolver(jwt={"enabled": True, "key": public_pem(keys["EdDSA"]), "algorithms": accepted})
    if alg == "HS256":
        token = jwt.encode(claims(), "a-long-shared-secret-of-32-bytes!", algorithm="HS256")
    else:
        token = jwt.encode(claims(), keys["ES256"], algorithm="ES256")
    with pytest.raises(IdentityError, match="token refused"):
        resolve(r, bearer(token))


def test_audience_and_issuer_when_they_match(keys: dict[str, PrivateKey]) -> None:
    r = resolver(
        jwt={
            "enabled": True,
            "key": public_pem(keys["EdDSA"]),
            "audience": "chat",
            "issuer": "https://login.example",
        }
    )
    token = jwt.encode(
        claims(aud=["chat", "mail"], iss="https://login.example"), keys["EdDSA"], algorithm="EdDSA"
    )
    got = resolve(r, bearer(token))
    assert got is not None
    assert got.user_id == "alice"


def test_an_empty_audience_is_not_checked(keys: dict[str, PrivateKey]) -> None:
    r = resolver(jwt={"enabled": True, "key": public_pem(keys["EdDSA"])})
    token = jwt.encode(claims(aud="chat"), keys["EdDSA"], algorithm="EdDSA")
    assert resolve(r, bearer(token)) is not None
