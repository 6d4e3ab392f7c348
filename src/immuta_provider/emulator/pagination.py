"""Opaque cursors and keyset pages over sequence-ordered lists.

Every listable thing carries a creation sequence number; an index is a sorted list of them, and a
cursor is base64 JSON naming the last sequence number served. A page is a bisect plus a slice, so
it costs O(log n + page) however large the inventory, and stays correct while items are added or
removed between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from .rules import ApiError

T = TypeVar("T")


def encode_cursor(seq: int) -> str:
    """An opaque cursor that resumes after the item with sequence number ``seq``."""
    raw = json.dumps({"after": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str | None) -> int | None:
    """The sequence number inside a cursor (None for the first page); 400 if it is not ours."""
    if cursor is None or cursor == "":
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        seq = data["after"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeError):
        raise ApiError(400, f"Invalid page[cursor] {cursor!r}.") from None
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ApiError(400, f"Invalid page[cursor] {cursor!r}.")
    return seq


def _ordered(seqs: Sequence[int], after: int | None, descending: bool) -> Iterator[int]:
    if descending:
        stop = len(seqs) if after is None else bisect_left(seqs, after)
        for index in range(stop - 1, -1, -1):
            yield seqs[index]
    else:
        start = 0 if after is None else bisect_right(seqs, after)
        for index in range(start, len(seqs)):
            yield seqs[index]


def keyset_page(
    seqs: Sequence[int],
    lookup: Callable[[int], T | None],
    *,
    cursor: str | None,
    limit: int,
    keep: Callable[[T], bool] | None = None,
    descending: bool = False,
) -> tuple[list[T], str | None]:
    """One page of the items whose sequence numbers are ``seqs`` (sorted ascending).

    ``lookup`` maps a sequence number to its item; ``keep`` filters. The next cursor is None when no
    further item would match, so a client never fetches an empty last page.
    """
    after = decode_cursor(cursor)
    if keep is None and not descending:
        start = 0 if after is None else bisect_right(seqs, after)
        chunk = [item for seq in seqs[start : start + limit] if (item := lookup(seq)) is not None]
        more = start + limit < len(seqs)
        last_seq = seqs[start + limit - 1] if more else None
        return chunk, (encode_cursor(last_seq) if last_seq is not None else None)
    items: list[T] = []
    last = -1
    for seq in _ordered(seqs, after, descending):
        item = lookup(seq)
        if item is None or (keep is not None and not keep(item)):
            continue
        if len(items) == limit:
            return items, encode_cursor(last)
        items.append(item)
        last = seq
    return items, None
