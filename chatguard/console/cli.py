"""``chatguard console``: make the secrets of a moderator account.

``hash-password`` reads a password (prompted without echo on a terminal,
else the first line of stdin) and prints its argon2 hash for
``console.moderators[].password_hash``. ``token`` prints a new API token,
once, with the hash to put in ``console.moderators[].token_hash``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .accounts import hash_password, mint_token

MIN_PASSWORD = 12


def cmd_hash_password(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("chatguard: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"chatguard: a password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 1
    hashed = hash_password(password)
    print(json.dumps({"password_hash": hashed}) if args.json else hashed)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    token, hashed = mint_token()
    if args.json:
        print(json.dumps({"token": token, "token_hash": hashed}))
    else:
        print(f"token (give to the moderator, shown once): {token}")
        print(f"token_hash (put in console.moderators[].token_hash): {hashed}")
    return 0


def add_parser(sub: Any) -> None:
    console = sub.add_parser("console", help="moderator console accounts: hashes and tokens")
    console_sub = console.add_subparsers(dest="console_command", required=True)
    hp = console_sub.add_parser("hash-password", help="argon2 hash of a password (stdin)")
    hp.add_argument("--json", action="store_true")
    hp.set_defaults(func=cmd_hash_password)
    tk = console_sub.add_parser("token", help="a new API token and its hash")
    tk.add_argument("--json", action="store_true")
    tk.set_defaults(func=cmd_token)
