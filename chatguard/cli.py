"""The ``chatguard`` command line: one entry point, one sub-command per job.

Contract (../DESIGN.md): machine-readable output with ``--json``; exit code 0
only on success; errors go to stderr as one line naming what is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from . import config as config_mod
from .banners import BannerError
from .codecs import MappingError
from .policy.rules import PolicyError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop where the platform has it."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - platforms without uvloop
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .app import ChatGuard

    cfg = config_mod.load(args.config)
    _setup_logging(cfg.log_level)

    async def main() -> int:
        await ChatGuard(cfg).serve()
        return EXIT_OK

    return run_async(main())


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config)
    from .codecs import JsonChatCodec
    from .identity import IdentityResolver

    if cfg.codec.type == "jsonchat":
        JsonChatCodec.from_name_or_path(cfg.codec.mapping)
    IdentityResolver(cfg.identity)
    if args.json:
        print(json.dumps({"ok": True, "config": args.config}))
    else:
        print(f"{args.config}: ok")
    return EXIT_OK


def cmd_config_keys(args: argparse.Namespace) -> int:
    rows = [
        {"key": key, "default": list(d) if isinstance(d, tuple) else d, "doc": doc}
        for key, d, doc in config_mod.iter_keys()
    ]
    if args.json:
        print(json.dumps(rows, default=dict))
    else:
        for row in rows:
            print(f"{row['key']} = {json.dumps(row['default'], default=dict)}  # {row['doc']}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    _setup_logging("warning")
    return run_async(
        run_demo(
            listen=args.listen,
            upstream_listen=args.upstream_listen,
            admin=args.admin,
            data_dir=args.data_dir,
            scripted=args.scripted,
        )
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not PORT or HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number")
    return host or "127.0.0.1", number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatguard", description="Chat-safety sidecar for WebSocket, IRC and XMPP chat."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the sidecar in front of the configured upstream")
    run.add_argument("--config", required=True, help="configuration YAML file")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="example chat service + sidecar + admin, all local")
    demo.add_argument("--listen", type=_host_port, default=("127.0.0.1", 8000))
    demo.add_argument("--upstream-listen", type=_host_port, default=("127.0.0.1", 9000))
    demo.add_argument("--admin", type=_host_port, default=("127.0.0.1", 8081))
    demo.add_argument("--data-dir", default=None, help="keep demo data here (default: temp)")
    demo.add_argument("--scripted", action="store_true", help="also run two chatting bots")
    demo.set_defaults(func=cmd_demo)

    cfg = sub.add_parser("config", help="check a configuration, list every key")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("config")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_config_check)
    keys = cfg_sub.add_parser("keys", help="every key with its default and meaning")
    keys.add_argument("--json", action="store_true")
    keys.set_defaults(func=cmd_config_keys)

    from .cli_policy import add_parser as add_policy

    add_policy(sub)
    from .cli_banners import add_parser as add_banners

    add_banners(sub)

    from .cli_evidence import add_parser as add_evidence

    add_evidence(sub)

    from .console.cli import add_parser as add_console

    add_console(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (config_mod.ConfigError, MappingError, PolicyError, BannerError) as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"chatguard: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`| head`); nothing more to say.
        return EXIT_OK
    except OSError as exc:
        # Most often a port already in use: say which, without a traceback.
        print(f"chatguard: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
