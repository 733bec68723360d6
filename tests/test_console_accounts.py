"""Moderator accounts: roles and permissions, argon2 passwords, API tokens."""

from __future__ import annotations

import pytest

from chatguard.config import ModeratorAccount, from_mapping
from chatguard.console.accounts import (
    Account,
    Accounts,
    Permission,
    Role,
    hash_password,
    mint_token,
    token_hash,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def accounts() -> tuple[Accounts, str]:
    token, hashed = mint_token()
    return (
        Accounts.from_config(
            [
                ModeratorAccount("mia", "Mia", "moderator", hash_password(PASSWORD), hashed),
                ModeratorAccount("ada", "", "auditor", "", ""),
            ]
        ),
        token,
    )


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.MODERATOR, {Permission.VIEW, Permission.ACT, Permission.EXPORT}),
        (Role.LEAD, set(Permission)),
        (Role.AUDITOR, {Permission.VIEW, Permission.EXPORT}),
    ],
)
def test_permissions_by_role(role: Role, allowed: set[Permission]) -> None:
    account = Account("x", "X", role)
    assert {p for p in Permission if account.may(p)} == allowed


def test_right_password_signs_in(accounts: tuple[Accounts, str]) -> None:
    book, _ = accounts
    account = book.check_password("mia", PASSWORD)
    assert account is not None
    assert account.role is Role.MODERATOR
    assert account.name == "Mia"


@pytest.mark.parametrize(
    ("account_id", "password"),
    [("mia", PASSWORD + "x"), ("mia", ""), ("nobody", PASSWORD), ("ada", PASSWORD)],
)
def test_wrong_password_unknown_or_passwordless_account_is_refused(
    accounts: tuple[Accounts, str], account_id: str, password: str
) -> None:
    assert accounts[0].check_password(account_id, password) is None


def test_display_name_defaults_to_the_id(accounts: tuple[Accounts, str]) -> None:
    ada = accounts[0].get("ada")
    assert ada is not None
    assert ada.name == "ada"


def test_tokens_are_found_by_hash_only(accounts: tuple[Accounts, str]) -> None:
    book, token = accounts
    found = book.by_token(token)
    assert found is not None
    assert found.id == "mia"
    assert book.by_token(token + "x") is None
    assert book.by_token(token_hash(token)) is None  # the stored hash is not a token


def test_minted_tokens_differ_and_hash_as_configured() -> None:
    (a, ha), (b, hb) = mint_token(), mint_token()
    assert a != b
    assert ha != hb
    assert a.startswith("cg_")
    assert ha == token_hash(a)
    assert ha.startswith("sha256:")
    assert len(a) > 40


def test_config_accepts_accounts_and_refuses_bad_ones() -> None:
    from chatguard.config import ConfigError

    ok = from_mapping(
        {"console": {"moderators": [{"id": "m", "password_hash": hash_password("p" * 12)}]}}
    )
    assert ok.console.moderators[0].role == "moderator"
    bad = [
        ({"moderators": [{"name": "x"}]}, "console.moderators[0].id"),
        ({"moderators": [{"id": "a"}, {"id": "a"}]}, "console.moderators[1].id"),
        ({"moderators": [{"id": "a", "role": "admin"}]}, "console.moderators[0].role"),
        ({"moderators": [{"id": "a", "password_hash": "plain"}]}, "password_hash"),
        ({"moderators": [{"id": "a", "token_hash": "abc"}]}, "token_hash"),
        ({"moderators": [{"id": "a", "pasword_hash": "x"}]}, "console.moderators[0].pasword"),
        ({"moderators": {"id": "a"}}, "console.moderators"),
        ({"sso": {"header": "X-User"}}, "console.sso.trusted_proxies"),
        ({"sso": {"header": "X-User", "trusted_proxies": ["nope"]}}, "trusted_proxies"),
    ]
    for section, key in bad:
        with pytest.raises(ConfigError) as err:
            from_mapping({"console": section})
        assert key in str(err.value), (section, str(err.value))
