"""``immuta-emulator``: parse flags, seed, bind, print the URL and key, serve until a signal."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .admin import BehaviourSpec
from .core import DEFAULT_API_KEY, DEFAULT_SYNC_DURATION, Emulator, EmulatorConfig
from .dialect import DOCUMENTED, Dialect, DialectError
from .faults import FaultSpec
from .scheduler import Behaviour
from .seed import SEEDS
from .tokens import AUTH_MODES, DEFAULT_AUTH_MODE, DEFAULT_TOKEN_TTL


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``immuta-emulator``."""
    parser = argparse.ArgumentParser(
        prog="immuta-emulator",
        description="A stateful local emulator of Immuta's Connections API, for tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--seed", choices=SEEDS, default="demo", help="start-up data")
    parser.add_argument(
        "--seed-objects",
        type=int,
        default=0,
        metavar="N",
        help="also create connection 'snowflake-large' with N data objects",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted API key; repeatable (default {DEFAULT_API_KEY})",
    )
    parser.add_argument(
        "--sync-duration",
        type=float,
        default=DEFAULT_SYNC_DURATION,
        metavar="SECONDS",
        help="how long a task run takes from creation to its end",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default=DEFAULT_AUTH_MODE,
        help=(
            "what /api/ accepts: any (the key as a bearer, the raw key, or an exchanged token), "
            "exchange-only (tokens from POST /bim/apikey/authenticate only), key-only (the key; "
            f"no exchange endpoint). Default {DEFAULT_AUTH_MODE}"
        ),
    )
    parser.add_argument(
        "--token-ttl",
        type=_positive_seconds,
        default=DEFAULT_TOKEN_TTL,
        metavar="SECONDS",
        help=f"how long an exchanged token is accepted (default {DEFAULT_TOKEN_TTL:g})",
    )
    parser.add_argument("--state-file", type=Path, help="persist state in this SQLite file")
    parser.add_argument("--faults", type=Path, metavar="FILE.json", help="faults to start with")
    parser.add_argument("--access-log", type=Path, help="write the access log to this file")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (stderr)",
    )
    parser.add_argument("--ssl-certfile", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--ssl-keyfile", type=Path, help="the certificate's private key")
    parser.add_argument(
        "--dialect",
        type=Path,
        metavar="FILE.json",
        help="answer like a tenant with other status names and list envelope (docs/emulator.md)",
    )
    return parser


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def load_faults_file(path: Path) -> tuple[list[FaultSpec], dict[str, Behaviour]]:
    """Read ``--faults``: a JSON list of fault specs, or ``{"faults": [...], "behaviours":
    {"<connectionKey>": {...}}}``."""
    data = json.loads(path.read_text())
    if isinstance(data, list):
        data = {"faults": data}
    if not isinstance(data, dict) or set(data) - {"faults", "behaviours"}:
        raise ValueError(f"{path}: expected a list of faults or {{'faults', 'behaviours'}}")
    faults = TypeAdapter(list[FaultSpec]).validate_python(data.get("faults", []))
    behaviours = {
        key: spec.to_behaviour()
        for key, spec in TypeAdapter(dict[str, BehaviourSpec])
        .validate_python(data.get("behaviours", {}))
        .items()
    }
    return faults, behaviours


def _log_config(level: str, access_log: Path | None) -> dict[str, Any]:
    # The access log holds the client address, request line and status only: never headers,
    # so never an API key.
    access_handler: dict[str, Any] = (
        {"class": "logging.FileHandler", "filename": str(access_log), "formatter": "access"}
        if access_log is not None
        else {"class": "logging.NullHandler"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": access_handler,
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "immuta_provider.emulator": {
                "handlers": ["default"],
                "level": level.upper(),
                "propagate": False,
            },
        },
    }


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from here on, before uvicorn starts accepting
    sock.setblocking(False)
    return sock


def _exit_now(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; returns the exit status (0 on a clean stop)."""
    args = build_parser().parse_args(argv)
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        print("--ssl-certfile and --ssl-keyfile go together", file=sys.stderr)
        return 2
    # Until uvicorn takes the signals over, a stop request simply ends the process cleanly.
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    try:
        faults, behaviours = load_faults_file(args.faults) if args.faults else ([], {})
    except (OSError, ValueError, ValidationError) as exc:
        print(f"Cannot read --faults {args.faults}: {exc}", file=sys.stderr)
        return 2
    try:
        dialect = Dialect.load(args.dialect) if args.dialect else DOCUMENTED
    except DialectError as exc:
        print(f"Cannot use --dialect: {exc}", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        seed=args.seed,
        seed_objects=args.seed_objects,
        sync_duration=args.sync_duration,
        state_file=args.state_file,
        faults=faults,
        behaviours=behaviours,
        dialect=dialect,
        auth=args.auth,
        token_ttl=args.token_ttl,
    )
    started = time.perf_counter()
    emulator = Emulator(config)
    try:
        return _serve(args, emulator, time.perf_counter() - started)
    finally:
        emulator.close()


def _serve(args: argparse.Namespace, emulator: Emulator, seed_seconds: float) -> int:
    import uvicorn  # here, so that --help and argument errors stay fast

    from .app import create_app

    app = create_app(emulator=emulator)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    scheme = "https" if args.ssl_certfile else "http"
    shown_host = f"[{host}]" if ":" in host else host
    state = emulator.state
    print(f"Immuta emulator listening on {scheme}://{shown_host}:{port}", flush=True)
    print(f"API key: {emulator.config.api_keys[0]}", flush=True)
    if not emulator.config.dialect.is_documented:
        print(f"Dialect: {emulator.config.dialect.name}", flush=True)
    if emulator.config.auth != DEFAULT_AUTH_MODE or emulator.config.token_ttl != DEFAULT_TOKEN_TTL:
        print(
            f"Auth: {emulator.config.auth}, tokens live {emulator.config.token_ttl:g} s",
            flush=True,
        )
    print(
        f"Ready: {len(state.connections)} connections, {len(state.inventory)} data objects "
        f"({seed_seconds:.2f} s to load)",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="off",
            log_config=_log_config(args.log_level, args.access_log),
            access_log=args.access_log is not None,
            ssl_certfile=str(args.ssl_certfile) if args.ssl_certfile else None,
            ssl_keyfile=str(args.ssl_keyfile) if args.ssl_keyfile else None,
            timeout_graceful_shutdown=5,
        )
    )

    # uvicorn installs its own handlers while serving and re-raises the signal when it is done;
    # this handler receives that re-raise (and any signal in between) as a request to stop.
    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("immuta_provider.emulator").info("serving on port %s", port)
    server.run(sockets=[sock])
    return 0
