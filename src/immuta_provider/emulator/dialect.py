"""Emulator dialects: a tenant that speaks the API with other words than API-NOTES.md guesses.

The reference leaves run and task status names and list envelopes unpublished, so a real tenant
may differ from the emulator's default (API-NOTES.md, *Meeting a real tenant*). A dialect file
(``immuta-emulator --dialect PATH``) makes the emulator such a tenant, so the provider's
tolerance and ``immuta-doctor`` are tested end to end::

    {
      "name": "acme-data",
      "statuses": {"PENDING": "QUEUED", "RUNNING": "IN_PROGRESS", "CANCELING": "STOPPING",
                   "COMPLETED": "SUCCEEDED", "FAILED": "ERROR", "CANCELED": "ABORTED"},
      "envelope": {"items": "data", "cursor": "nextCursor"}
    }

* ``statuses``: the name each documented status has in this tenant (missing ones keep theirs).
  Applied to every task and run in answers, and read back from ``filter[status]``, where a name
  the dialect does not use matches nothing (as a tenant would answer a filter on a word it does
  not know).
* ``envelope.items``: the key every list answer puts its items under (default: the documented
  key of each endpoint); ``envelope.cursor``: ``"page.nextCursor"`` (documented) or
  ``"nextCursor"`` (top level).

Only the HTTP answers change: the state, the admin API, faults and behaviours keep the documented
names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rules import ApiError

RUN_STATUSES = ("PENDING", "RUNNING", "CANCELING", "COMPLETED", "FAILED", "CANCELED")
CURSOR_POSITIONS = ("page.nextCursor", "nextCursor")


class DialectError(ValueError):
    """A dialect file that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Dialect:
    """How this tenant names statuses and wraps lists (the default: as API-NOTES.md says).

    Attributes:
        name: shown in logs and test ids.
        statuses: documented status -> this tenant's name (only those that differ).
        items_key: the key of every list's items (``None``: each endpoint's documented key).
        cursor_at: ``"page.nextCursor"`` or ``"nextCursor"``.
    """

    name: str = "documented"
    statuses: Mapping[str, str] = field(default_factory=dict)
    items_key: str | None = None
    cursor_at: str = "page.nextCursor"

    @property
    def is_documented(self) -> bool:
        """Whether this is the default dialect (nothing renamed, documented envelope)."""
        return (
            not self.statuses and self.items_key is None and self.cursor_at == CURSOR_POSITIONS[0]
        )

    @classmethod
    def load(cls, path: Path) -> Dialect:
        """Read and check a dialect file; raises :class:`DialectError`."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise DialectError(f"cannot read dialect {path}: {error}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "dialect") -> Dialect:
        """Build a dialect from its JSON form; raises :class:`DialectError`."""
        if not isinstance(data, dict) or set(data) - {"name", "statuses", "envelope"}:
            raise DialectError(
                f"{source}: expected an object with 'name', 'statuses' and 'envelope'"
            )
        statuses = data.get("statuses", {})
        if not isinstance(statuses, dict) or set(statuses) - set(RUN_STATUSES):
            raise DialectError(
                f"{source}: 'statuses' maps documented statuses ({', '.join(RUN_STATUSES)}) "
                "to this tenant's names"
            )
        names = {documented: statuses.get(documented, documented) for documented in RUN_STATUSES}
        if not all(isinstance(n, str) and n for n in names.values()) or len(
            set(names.values())
        ) != len(names):
            raise DialectError(f"{source}: status names must be distinct non-empty strings")
        envelope = data.get("envelope", {})
        if not isinstance(envelope, dict) or set(envelope) - {"items", "cursor"}:
            raise DialectError(f"{source}: 'envelope' has 'items' and 'cursor'")
        items_key = envelope.get("items")
        cursor_at = envelope.get("cursor", CURSOR_POSITIONS[0])
        if items_key is not None and (not isinstance(items_key, str) or not items_key):
            raise DialectError(f"{source}: envelope 'items' must be a key name")
        if cursor_at not in CURSOR_POSITIONS:
            raise DialectError(f"{source}: envelope 'cursor' is one of {CURSOR_POSITIONS}")
        return cls(
            name=str(data.get("name", Path(source).stem)),
            statuses={k: v for k, v in names.items() if k != v},
            items_key=items_key,
            cursor_at=cursor_at,
        )

    def status_out(self, status: str) -> str:
        """This tenant's name of a documented status."""
        return self.statuses.get(status, status)

    def status_in(self, name: str | None) -> str | None:
        """The documented status behind a ``filter[status]`` value.

        ``None`` in, ``None`` out (no filter). The default dialect answers 400 for a name it
        does not know (as before); another dialect returns ``""``, which no run has.
        """
        if name is None:
            return None
        for documented in RUN_STATUSES:
            if self.status_out(documented) == name:
                return documented
        if self.is_documented:
            raise ApiError(
                400,
                f"Invalid request query input: filter[status] must be one of "
                f"{', '.join(RUN_STATUSES)}.",
            )
        return ""

    def item(self, wire: dict[str, Any]) -> dict[str, Any]:
        """A task or run as this tenant answers it."""
        status = wire.get("status")
        if isinstance(status, str) and status in self.statuses:
            return {**wire, "status": self.statuses[status]}
        return wire

    def page(self, key: str, items: list[dict[str, Any]], next_cursor: str | None) -> Any:
        """A list answer in this tenant's envelope."""
        body: dict[str, Any] = {self.items_key or key: items}
        if self.cursor_at == "nextCursor":
            body["nextCursor"] = next_cursor
        else:
            body["page"] = {"nextCursor": next_cursor}
        return body


DOCUMENTED = Dialect()
