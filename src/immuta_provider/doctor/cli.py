"""The ``immuta-doctor`` command line: where the tenant and key come from, output, exit status.

Exit status: 0 when no check fails, 1 when something the provider relies on would break, 2 on a
usage error (bad arguments, a missing environment variable, an unusable Airflow connection).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from immuta_provider.client import ImmutaValidationError
from immuta_provider.client.vocabulary import AUTH_METHODS
from immuta_provider.doctor.checks import StatusSets, Target, run_checks
from immuta_provider.doctor.report import render_table

DEFAULT_KEY_VARIABLE = "IMMUTA_API_KEY"


class UsageError(Exception):
    """The command line cannot be run as given; the message says what to change."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # argparse repeats unknown arguments; one of them may be an API key typed by mistake.
        if message.startswith("unrecognized arguments"):
            message = (
                "unrecognized arguments (not repeated here: one may be a secret); the API key "
                "is read from the environment variable named by --api-key-env, never from the "
                "command line"
            )
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``immuta-doctor``."""
    parser = _Parser(
        prog="immuta-doctor",
        allow_abbrev=False,
        description=(
            "Check, read-only, whether airflow-provider-immuta fits an Immuta tenant: "
            "reachability and TLS, authentication, list envelopes, fields, statuses. Prints a "
            "table and suggests the connection extras that make the provider fit."
        ),
        epilog=(
            "It sends only GETs, the API key exchange and data object _search: it never creates, "
            "changes, validates, cancels or deletes anything. Exit 0: nothing fails; 1: "
            "something the provider relies on would break; 2: usage error."
        ),
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the tenant, e.g. https://acme.hosted.immutacloud.com")
    where.add_argument(
        "--conn-id",
        help="read URL, key and settings from this Airflow connection (needs Airflow installed)",
    )
    parser.add_argument(
        "--api-key-env",
        default=DEFAULT_KEY_VARIABLE,
        metavar="VAR",
        help=f"environment variable holding the API key (default {DEFAULT_KEY_VARIABLE})",
    )
    parser.add_argument(
        "--connection-key",
        metavar="KEY",
        help="inspect this Immuta connection (default: the first few listed)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report here")
    parser.add_argument(
        "--auth-method",
        choices=AUTH_METHODS,
        help="how the provider is to use the key (default: the connection's auth_method, or auto)",
    )
    parser.add_argument("--ca-bundle", metavar="PATH", help="CA bundle to verify TLS, with --url")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)"
    )
    return parser


def _target_from_url(args: argparse.Namespace) -> Target:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.api_key_env):
        # Not echoed: what was given may be the key itself.
        raise UsageError(
            "--api-key-env takes the name of an environment variable (letters, digits and _), "
            "and what was given is not one; the key itself is never taken from the command line"
        )
    api_key = os.environ.get(args.api_key_env, "").strip()
    if not api_key:
        raise UsageError(
            f"the environment variable {args.api_key_env} is not set or empty: put the Immuta "
            f"API key in it (export {args.api_key_env}=...), or name another one with "
            "--api-key-env; the key is never taken from the command line"
        )
    return Target(
        base_url=args.url,
        api_key=api_key,
        source="--url",
        verify=args.ca_bundle or True,
        timeout=args.timeout,
        client_options={"auth_method": args.auth_method or AUTH_METHODS[0]},
        connection_key=args.connection_key,
    )


def _target_from_airflow(args: argparse.Namespace) -> Target:
    try:
        # Airflow only on this path: the doctor runs anywhere the client runs.
        from immuta_provider.hooks.immuta import ImmutaHook
    except ImportError as error:
        raise UsageError(
            f"--conn-id needs Apache Airflow installed here ({error}); use --url and "
            "--api-key-env instead"
        ) from None
    hook = ImmutaHook(immuta_conn_id=args.conn_id)
    try:
        settings = hook.settings
    except Exception as error:  # Airflow's not-found error, or the connection's own problems
        raise UsageError(f"cannot use Airflow connection {args.conn_id!r}: {error}") from None
    return Target(
        base_url=settings.base_url,
        api_key=settings.api_key,
        source=f"Airflow connection {args.conn_id!r}",
        verify=settings.verify,
        timeout=args.timeout if args.timeout != 30.0 else settings.timeout,
        client_options={"auth_method": args.auth_method or settings.auth_method},
        statuses=StatusSets(
            success=settings.statuses.success,
            failure=settings.statuses.failure,
            active=settings.statuses.active,
        ),
        connection_key=args.connection_key,
    )


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, transport: Any = None
) -> int:
    """Run the doctor; returns the exit status (``transport``: an httpx transport, for tests)."""
    out = stdout or sys.stdout
    args = build_parser().parse_args(argv)
    # The client's envelope warnings would repeat, unformatted, what the report says.
    client_logger = logging.getLogger("immuta_provider.client")
    level = client_logger.level
    client_logger.setLevel(logging.ERROR)
    try:
        return _run(args, out, transport)
    finally:
        client_logger.setLevel(level)


def _run(args: argparse.Namespace, out: TextIO, transport: Any) -> int:
    try:
        if args.timeout <= 0:
            raise UsageError(f"--timeout {args.timeout:g} must be a positive number of seconds")
        target = _target_from_url(args) if args.url else _target_from_airflow(args)
        report = run_checks(target, transport=transport)
    except (UsageError, ImmutaValidationError) as error:
        print(f"immuta-doctor: {error}", file=sys.stderr)
        return 2
    print(render_table(report), file=out)
    if args.json is not None:
        args.json.write_text(report.dumps() + "\n")
        print(f"JSON report written to {args.json}", file=out)
    return report.exit_code
