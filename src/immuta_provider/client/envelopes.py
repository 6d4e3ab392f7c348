"""List envelopes: where a listing's items and its next-page cursor sit in the answer.

The documented shape is our guess (API-NOTES.md, *Bodies and envelopes* [ours]):
``{"<items>": [...], "page": {"nextCursor": str | null}}``. Immuta does not publish it, so the
client reads what a tenant answers by these rules (API-NOTES.md, *Meeting a real tenant*):

* the items under the endpoint's documented key (``runs``, ``tasks``...); else under the one
  list-valued key of the body (``{"data": [...]}``, ``{"items": [...]}``);
* the next cursor under ``page.nextCursor``; else a top-level ``nextCursor``; neither means the
  last page.

A fallback is logged once per endpoint and process (``immuta_provider.client`` logger). A body
that fits none of the rules raises :class:`EnvelopeMismatch`, naming the top-level keys it saw and
never their values (a body may hold anything).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("immuta_provider.client")

DOCUMENTED_CURSOR = "page.nextCursor"
TOP_LEVEL_CURSOR = "nextCursor"


def documented_shape(items_key: str) -> str:
    """The documented envelope of a listing, for messages."""
    return f'{{"{items_key}": [...], "page": {{"nextCursor": ...}}}}'


class EnvelopeMismatch(ValueError):
    """A list answer fits none of the envelope rules.

    Attributes:
        problem: what did not fit (no values).
        keys: the body's top-level keys (empty for a body that is not a JSON object).
    """

    def __init__(self, problem: str, keys: list[str]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.keys = keys


@dataclass(frozen=True)
class ListEnvelope:
    """A list answer read by the envelope rules.

    Attributes:
        items: the raw (unvalidated) items.
        next_cursor: the next page's cursor, ``None`` on the last page.
        items_key: the key the items were read from.
        documented_items_key: the key the documented envelope puts them under.
        cursor_at: ``"page.nextCursor"``, ``"nextCursor"`` (top level), or ``None`` when the body
            has neither (read as the last page).
    """

    items: list[Any]
    next_cursor: str | None
    items_key: str
    documented_items_key: str
    cursor_at: str | None

    @property
    def differences(self) -> list[str]:
        """How this answer differs from the documented envelope (empty when it does not)."""
        found = []
        if self.items_key != self.documented_items_key:
            found.append(f"items under {self.items_key!r} instead of {self.documented_items_key!r}")
        if self.cursor_at == TOP_LEVEL_CURSOR:
            found.append(
                f"next-page cursor at top-level {TOP_LEVEL_CURSOR!r} instead of "
                f"{DOCUMENTED_CURSOR!r}"
            )
        return found


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _cursor(data: Mapping[str, Any]) -> tuple[Any, str | None]:
    page = data.get("page")
    if isinstance(page, Mapping) and "nextCursor" in page:
        return page["nextCursor"], DOCUMENTED_CURSOR
    if TOP_LEVEL_CURSOR in data:
        return data[TOP_LEVEL_CURSOR], TOP_LEVEL_CURSOR
    return None, None


def read_list_envelope(data: Any, items_key: str) -> ListEnvelope:
    """Read a decoded list answer by the envelope rules; raises :class:`EnvelopeMismatch`."""
    if not isinstance(data, Mapping):
        raise EnvelopeMismatch(
            f"a body that is {_type_name(data)}, not a JSON object holding a list", []
        )
    keys = [str(key) for key in data]
    if isinstance(data.get(items_key), list):
        found_key = items_key
    else:
        lists = [key for key in keys if isinstance(data[key], list)]
        if len(lists) != 1:
            which = "no list-valued key" if not lists else f"{len(lists)} list-valued keys"
            raise EnvelopeMismatch(
                f"no {items_key!r} list and {which} to read the items from instead", keys
            )
        found_key = lists[0]
    cursor, cursor_at = _cursor(data)
    if cursor is not None and not isinstance(cursor, str):
        raise EnvelopeMismatch(
            f"a next-page cursor at {cursor_at!r} that is {_type_name(cursor)}, not a string", keys
        )
    return ListEnvelope(
        items=data[found_key],
        next_cursor=cursor or None,
        items_key=found_key,
        documented_items_key=items_key,
        cursor_at=cursor_at,
    )


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(endpoint: str, envelope: ListEnvelope) -> None:
    """Log the first fallback of ``endpoint`` in this process (later ones stay quiet)."""
    differences = envelope.differences
    if not differences:
        return
    with _warned_lock:
        if endpoint in _warned:
            return
        _warned.add(endpoint)
    logger.warning(
        "%s: Immuta's list answer differs from the documented envelope %s: %s. The client reads "
        "it anyway (logged once per process); run immuta-doctor to see every difference between "
        "this tenant and the provider",
        endpoint,
        documented_shape(envelope.documented_items_key),
        "; ".join(differences),
    )


def forget_warnings() -> None:
    """Let every endpoint warn again (for tests)."""
    with _warned_lock:
        _warned.clear()
