"""Checks of operator arguments that arrive after templating (dicts, or JSON text)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_object(value: Any, name: str, *, source: str | None = None) -> dict[str, Any]:
    """A templated argument that must be a JSON object: a mapping as it is, text parsed as JSON.

    The error never quotes the value, which may hold secrets.

    :param value: The rendered argument.
    :param name: The argument's name, for the error message.
    :param source: Where the text came from (e.g. a file name), for the error message.
    """
    where = f"{name} ({source})" if source else name
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{where} is not valid JSON after templating: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}. Check the JSON syntax (double quotes, no trailing commas)."
            ) from None
        if not isinstance(parsed, dict):
            raise ValueError(
                f"{where} must be a JSON object ({{...}}), not a JSON {type(parsed).__name__}."
            )
        return parsed
    raise ValueError(
        f"{where} must be a dict (or a JSON object as text), not {type(value).__name__}."
    )


def optional_json_object(value: Any, name: str) -> dict[str, Any] | None:
    """:func:`json_object`, with ``None`` (and an empty string) meaning "not given"."""
    if value is None or value == "":
        return None
    return json_object(value, name)
