"""Input rules checked before any request is sent.

Each validator returns the (normalised) value or raises :class:`ImmutaValidationError` whose
message names the argument, shows the bad value with ``repr`` and states the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from immuta_provider.client.errors import ImmutaValidationError

RESERVED_CONNECTION_KEYS: frozenset[str] = frozenset(
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
"""Names Immuta refuses as connection keys (they collide with its own routes)."""

CONNECTION_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
"""Letters, digits, hyphens and underscores; at least one character."""

UUID_PATTERN = re.compile(
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
    r"|00000000-0000-0000-0000-000000000000)$"
)
"""The id pattern from Immuta's reference (task and run ids; we apply it to data objects too)."""

MIN_PAGE_SIZE = 1
MAX_PAGE_SIZE = 100

_RESERVED_LIST = ", ".join(sorted(RESERVED_CONNECTION_KEYS))


def validate_connection_key(value: object, name: str = "connection_key") -> str:
    """Check a connection key against Immuta's rules and return it."""
    if not isinstance(value, str):
        raise ImmutaValidationError(f"{name} {value!r} must be a string")
    if not value:
        raise ImmutaValidationError(f"{name} {value!r} must be at least 1 character long")
    if CONNECTION_KEY_PATTERN.fullmatch(value) is None:
        raise ImmutaValidationError(
            f"{name} {value!r} may contain only letters, digits, '-' and '_'"
        )
    if value in RESERVED_CONNECTION_KEYS:
        raise ImmutaValidationError(
            f"{name} {value!r} is a reserved name in Immuta (reserved: {_RESERVED_LIST}); "
            "choose another key"
        )
    return value


def validate_uuid(value: object, name: str) -> str:
    """Check an Immuta id (task, run, data object) against the reference's UUID pattern."""
    if not isinstance(value, str):
        raise ImmutaValidationError(f"{name} {value!r} must be a string UUID")
    # fullmatch: with match, "$" would also accept a trailing newline.
    if UUID_PATTERN.fullmatch(value) is None:
        raise ImmutaValidationError(
            f"{name} {value!r} is not a UUID as Immuta expects "
            "(8-4-4-4-12 hex digits, version 1-8, variant 8/9/a/b, or the nil UUID)"
        )
    return value


def validate_page_size(value: object, name: str = "page_size") -> int | None:
    """Check a page size (``page[limit]``): ``None`` for Immuta's default, else 1..100."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImmutaValidationError(f"{name} {value!r} must be an integer")
    if not MIN_PAGE_SIZE <= value <= MAX_PAGE_SIZE:
        raise ImmutaValidationError(
            f"{name} {value!r} is out of range; it must be between "
            f"{MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}"
        )
    return value


def validate_optional_text(value: object, name: str) -> str | None:
    """Check an optional non-empty string (filters such as ``status`` or ``created_by``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ImmutaValidationError(f"{name} {value!r} must be a string")
    if not value:
        raise ImmutaValidationError(f"{name} {value!r} must not be empty")
    # A str-based enum member (TaskStatus.RUNNING) is sent as its plain value.
    return str.__str__(value)


def validate_optional_uuid(value: object, name: str) -> str | None:
    """Like :func:`validate_uuid` but ``None`` is allowed."""
    return None if value is None else validate_uuid(value, name)


def validate_mapping(value: object, name: str) -> Mapping[str, Any]:
    """Check that a request body argument is a mapping (a dict of JSON values)."""
    if not isinstance(value, Mapping):
        raise ImmutaValidationError(
            f"{name} must be a mapping (e.g. a dict), got {type(value).__name__}"
        )
    return value


def validate_optional_mapping(value: object, name: str) -> Mapping[str, Any] | None:
    """Like :func:`validate_mapping` but ``None`` is allowed."""
    return None if value is None else validate_mapping(value, name)


def validate_base_url(value: object, name: str = "base_url") -> str:
    """Check the tenant URL (http or https, with a host) and return it without a trailing '/'."""
    if not isinstance(value, str):
        raise ImmutaValidationError(f"{name} {value!r} must be a string")
    stripped = value.strip()
    # A URL with "@" may hold user:password: such a value is never quoted in a message.
    shown = f"{value!r}" if "@" not in stripped else "(not shown: it may hold credentials)"
    try:
        parts = urlsplit(stripped)
        host = parts.hostname
        has_credentials = "@" in parts.netloc
    except ValueError:
        raise ImmutaValidationError(f"{name} {shown} is not a valid URL") from None
    if has_credentials:
        raise ImmutaValidationError(
            f"{name} must not contain credentials (user:password@); pass the API key as api_key"
        )
    if parts.scheme not in ("http", "https"):
        raise ImmutaValidationError(
            f"{name} {shown} must start with http:// or https:// "
            "(e.g. 'https://acme.hosted.immutacloud.com')"
        )
    if not host:
        raise ImmutaValidationError(f"{name} {shown} must include a host name")
    if parts.query or parts.fragment:
        raise ImmutaValidationError(f"{name} {shown} must not contain a query or fragment")
    return stripped.rstrip("/")


def validate_positive_number(value: object, name: str) -> float:
    """Check a timeout-like option: a number greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ImmutaValidationError(f"{name} {value!r} must be a number greater than 0")
    return float(value)


def validate_non_negative_number(value: object, name: str) -> float:
    """Check a number that may be zero (e.g. ``retry_after_cap``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ImmutaValidationError(f"{name} {value!r} must be a number >= 0")
    return float(value)


def validate_non_negative_int(value: object, name: str) -> int:
    """Check a count that may be zero (e.g. ``max_retries``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImmutaValidationError(f"{name} {value!r} must be an integer >= 0")
    return value


def validate_api_key(value: object, name: str = "api_key") -> SecretStr:
    """Check an API key and wrap it in a ``SecretStr``; messages never show the key itself."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(raw, str):
        raise ImmutaValidationError(f"{name} must be a string, got {type(raw).__name__}")
    # Keys pasted with a trailing newline are common; a space or control character inside the
    # key would make an invalid header whose error text could echo the key.
    raw = raw.strip()
    if not raw:
        raise ImmutaValidationError(f"{name} must not be empty")
    if not raw.isascii() or not raw.isprintable() or any(c.isspace() for c in raw):
        raise ImmutaValidationError(
            f"{name} contains whitespace, control or non-ASCII characters; "
            "copy the key from Immuta again (the value is not shown here)"
        )
    return SecretStr(raw)
