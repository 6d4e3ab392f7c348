"""The wire rules of API-NOTES.md: identifiers, page limits and the JSON error body.

Written independently of ``immuta_provider.client`` on purpose: the contract tests compare the two
implementations, so sharing code here would hide the very mistakes they exist to find.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

CONNECTION_KEY_PATTERN = r"^[A-Za-z0-9_-]+$"
RESERVED_CONNECTION_KEYS = frozenset(
    {
        "data",
        "connection",
        "object",
        "crawl",
        "search",
        "settings",
        "metadata",
        "permission",
        "sync",
        "bulk",
        "upgrade",
    }
)
UUID_PATTERN = (
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
    r"|00000000-0000-0000-0000-000000000000)$"
)
PAGE_LIMIT_DEFAULT = 20
PAGE_LIMIT_MAX = 100

# fullmatch, not match: Python's "$" also matches before a trailing newline, JSON Schema's does not.
_CONNECTION_KEY_RE = re.compile(CONNECTION_KEY_PATTERN)
_UUID_RE = re.compile(UUID_PATTERN)


class ApiError(Exception):
    """An error answered with the JSON error body ``{"statusCode", "error", "message"}``."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


def reason_phrase(status_code: int) -> str:
    """The standard reason phrase of a status ("Conflict" for 409), or "Error" if unknown."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def error_body(status_code: int, message: str) -> dict[str, Any]:
    """The error body every non-2xx JSON answer carries."""
    return {"statusCode": status_code, "error": reason_phrase(status_code), "message": message}


def error_bytes(status_code: int, message: str) -> bytes:
    """``error_body`` serialized, for raw ASGI answers."""
    return json.dumps(error_body(status_code, message), separators=(",", ":")).encode()


def connection_key_problem(value: object) -> str | None:
    """Why ``value`` is not a valid connection key, or None if it is one."""
    if not isinstance(value, str) or not value:
        return "Invalid connectionKey: it must be a non-empty string."
    if not _CONNECTION_KEY_RE.fullmatch(value):
        return (
            f"Invalid connectionKey {value!r}: connection key must contain only letters, numbers, "
            "hyphens, and underscores."
        )
    if value in RESERVED_CONNECTION_KEYS:
        return (
            f"Invalid connectionKey {value!r}: connection key cannot be one of the reserved names "
            f"{', '.join(sorted(RESERVED_CONNECTION_KEYS))}."
        )
    return None


def check_connection_key(value: object) -> str:
    """Return ``value`` if it is a valid connection key, else raise a 400."""
    problem = connection_key_problem(value)
    if problem is not None:
        raise ApiError(400, problem)
    assert isinstance(value, str)
    return value


def is_uuid(value: object) -> bool:
    """Whether ``value`` matches the reference's UUID pattern."""
    return isinstance(value, str) and _UUID_RE.fullmatch(value) is not None
