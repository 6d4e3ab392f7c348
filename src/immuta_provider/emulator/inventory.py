"""The data object store: records by id, plus sorted sequence-number indexes for O(page) reads.

Indexes (all ascending lists of ``seq``): every object of a connection, the roots of a connection,
the children of each object, and the objects of each (connection, type). New objects always get a
larger ``seq`` than any existing one, so adding is an append; removing is a bisect and a delete.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

from .pagination import keyset_page
from .records import SEARCHABLE_ATTRIBUTES, DataObjectRecord
from .rules import ApiError


def _matcher(
    connection_key: str, wanted: list[tuple[str, object]]
) -> Callable[[DataObjectRecord], bool]:
    def keep(record: DataObjectRecord) -> bool:
        return record.connection_key == connection_key and all(
            getattr(record, attr) == value for attr, value in wanted
        )

    return keep


def _discard(seqs: list[int], seq: int) -> None:
    index = bisect_left(seqs, seq)
    if index < len(seqs) and seqs[index] == seq:
        del seqs[index]


class Inventory:
    """Every connection's data objects, indexed for paging and search."""

    def __init__(self) -> None:
        self.by_id: dict[str, DataObjectRecord] = {}
        self.by_seq: dict[int, DataObjectRecord] = {}
        self.synced_at: dict[str, float] = {}  # end of each connection's latest sync
        self.dirty: set[str] = set()  # ids changed since the last save (added, updated or removed)
        self._all: dict[str, list[int]] = {}
        self._roots: dict[str, list[int]] = {}
        self._children: dict[str, list[int]] = {}
        self._by_type: dict[tuple[str, str], list[int]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def count(self, connection_key: str) -> int:
        """How many objects a connection has."""
        return len(self._all.get(connection_key, ()))

    def add(self, record: DataObjectRecord) -> None:
        """Store a new object; its ``seq`` must be larger than every stored one."""
        self.by_id[record.id] = record
        self.by_seq[record.seq] = record
        key = record.connection_key
        self._all.setdefault(key, []).append(record.seq)
        if record.parent_id is None:
            self._roots.setdefault(key, []).append(record.seq)
        else:
            self._children.setdefault(record.parent_id, []).append(record.seq)
        self._by_type.setdefault((key, record.type), []).append(record.seq)
        self.dirty.add(record.id)

    def get(self, connection_key: str, object_id: str) -> DataObjectRecord:
        """The object ``object_id`` of a connection, or a 404."""
        record = self.by_id.get(object_id)
        if record is None or record.connection_key != connection_key:
            raise ApiError(
                404, f"Data object '{object_id}' not found in connection '{connection_key}'."
            )
        return record

    def last_of_type(self, connection_key: str, object_type: str) -> DataObjectRecord | None:
        """The newest object of a type in a connection (e.g. where a sync puts new tables)."""
        seqs = self._by_type.get((connection_key, object_type))
        return self.by_seq[seqs[-1]] if seqs else None

    def of_type(self, connection_key: str, object_type: str) -> list[DataObjectRecord]:
        """Every object of one type in a connection, oldest first."""
        return [self.by_seq[seq] for seq in self._by_type.get((connection_key, object_type), ())]

    def wire(self, record: DataObjectRecord) -> dict[str, Any]:
        """A record as the API returns it, with its connection's latest sync applied."""
        return record.to_wire(self.synced_at.get(record.connection_key, 0.0))

    def mark_synced(self, connection_key: str, at: float) -> None:
        """Record that a sync touched every object of a connection at ``at``."""
        self.synced_at[connection_key] = at

    def remove_subtree(self, object_id: str) -> int:
        """Remove an object and all its descendants; returns how many were removed."""
        pending = [object_id]
        removed = 0
        while pending:
            record = self.by_id.pop(pending.pop(), None)
            if record is None:
                continue
            removed += 1
            del self.by_seq[record.seq]
            self.dirty.add(record.id)
            key = record.connection_key
            _discard(self._all[key], record.seq)
            _discard(self._by_type[(key, record.type)], record.seq)
            if record.parent_id is None:
                _discard(self._roots[key], record.seq)
            else:
                _discard(self._children.get(record.parent_id, []), record.seq)
            pending.extend(self.by_seq[seq].id for seq in self._children.pop(record.id, ()))
        return removed

    def remove_connection(self, connection_key: str) -> None:
        """Remove every object of a connection."""
        for seq in self._all.pop(connection_key, ()):
            record = self.by_seq.pop(seq)
            del self.by_id[record.id]
            self._children.pop(record.id, None)
            self.dirty.add(record.id)
        self._roots.pop(connection_key, None)
        self.synced_at.pop(connection_key, None)
        for type_key in [k for k in self._by_type if k[0] == connection_key]:
            del self._by_type[type_key]

    def children_page(
        self, connection_key: str, object_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of an object's children (404 if the object is not in the connection)."""
        self.get(connection_key, object_id)
        records, next_cursor = keyset_page(
            self._children.get(object_id, []), self.by_seq.get, cursor=cursor, limit=limit
        )
        return [self.wire(r) for r in records], next_cursor

    def search_page(
        self,
        connection_key: str,
        attributes: Mapping[str, object],
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a connection's objects whose attributes equal ``attributes``.

        Starts from the narrowest index the attributes allow (parent, then type), so the common
        searches (children of X, all tables) stay O(page) on a huge inventory.
        """
        wanted: list[tuple[str, object]] = []
        for name, value in attributes.items():
            if name not in SEARCHABLE_ATTRIBUTES:
                raise ApiError(
                    400,
                    f"Unknown search attribute {name!r}; searchable attributes are "
                    f"{', '.join(sorted(SEARCHABLE_ATTRIBUTES))}.",
                )
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"Search attribute {name!r} must be a string or null.")
            wanted.append((SEARCHABLE_ATTRIBUTES[name], value))
        if "parentId" in attributes:
            parent = attributes["parentId"]
            if parent is None:
                seqs = self._roots.get(connection_key, [])
            else:
                assert isinstance(parent, str)
                seqs = self._children.get(parent, [])
        elif isinstance(attributes.get("type"), str):
            object_type = attributes["type"]
            assert isinstance(object_type, str)
            seqs = self._by_type.get((connection_key, object_type), [])
        else:
            seqs = self._all.get(connection_key, [])
        # Indexed attributes are already satisfied by the chosen list, but re-checking them is
        # cheap and keeps one rule for all cases.
        keep = _matcher(connection_key, wanted) if wanted else None
        records, next_cursor = keyset_page(
            seqs, self.by_seq.get, cursor=cursor, limit=limit, keep=keep
        )
        return [self.wire(r) for r in records], next_cursor
