"""Moderator accounts, roles and what each role may do; password and token hashes.

What it owns: the account registry built from ``console.moderators``, the
permission table, argon2 password hashing and verification, and API tokens
(random, shown once, stored only as a SHA-256 hash).

Invariants: a password is checked only against its argon2 hash, and an
unknown account costs the same argon2 verification as a known one, so timing
does not tell which ids exist; tokens are compared by hash, never stored.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..config import ModeratorAccount

TOKEN_PREFIX = "cg_"
HASH_PREFIX = "sha256:"

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so both paths cost the
    same; made on first use, so importing this module costs no argon2 run."""
    return _hasher.hash(secrets.token_urlsafe(16))


class Role(enum.StrEnum):
    MODERATOR = "moderator"
    LEAD = "lead"
    AUDITOR = "auditor"


class Permission(enum.StrEnum):
    VIEW = "view"  # the queue, a case, its report
    ACT = "act"  # claim, release, notes, moderator actions
    EXPORT = "export"  # evidence bundles and report downloads
    ANALYTICS = "analytics"


#: How a refusal names what was not allowed.
DESCRIPTIONS: dict[Permission, str] = {
    Permission.VIEW: "view cases",
    Permission.ACT: "act on cases",
    Permission.EXPORT: "export evidence",
    Permission.ANALYTICS: "see analytics (leads only)",
}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.MODERATOR: frozenset({Permission.VIEW, Permission.ACT, Permission.EXPORT}),
    Role.LEAD: frozenset(Permission),
    Role.AUDITOR: frozenset({Permission.VIEW, Permission.EXPORT}),
}


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    role: Role
    password_hash: str = ""
    token_hash: str = ""

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "role": self.role.value}


def hash_password(password: str) -> str:
    """An argon2id hash for ``console.moderators[].password_hash``."""
    return _hasher.hash(password)


def mint_token() -> tuple[str, str]:
    """A new API token and the hash to put in ``console.moderators[].token_hash``."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: nothing to brute-force.
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """The configured moderators, by id and by token hash."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._by_id = {a.id: a for a in accounts}
        self._by_token = {a.token_hash: a for a in self._by_id.values() if a.token_hash}

    @classmethod
    def from_config(cls, moderators: Iterable[ModeratorAccount]) -> Accounts:
        return cls(
            Account(m.id, m.name or m.id, Role(m.role), m.password_hash, m.token_hash)
            for m in moderators
        )

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, account_id: str) -> Account | None:
        return self._by_id.get(account_id)

    def by_token(self, token: str) -> Account | None:
        digest = token_hash(token)
        for known, account in self._by_token.items():
            if hmac.compare_digest(known, digest):
                return account
        return None

    def check_password(self, account_id: str, password: str) -> Account | None:
        """The account when ``password`` is right; blocking (argon2): run in a thread."""
        account = self._by_id.get(account_id)
        stored = account.password_hash if account and account.password_hash else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if account is None or not account.password_hash:
            return None
        return account
