"""Lazy, cursor-following pagination for the listing endpoints.

A paginator holds a function that fetches one page for a cursor; it fetches the next page only
when the items of the current one are used up, and stops when the next cursor is null (where a
page's items and cursor sit in the answer: ``envelopes.py``).
Iterating a paginator twice starts again from the first page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from immuta_provider.client.errors import ImmutaResponseError, RequestContext

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items and the cursor of the next page (``None`` on the last)."""

    items: list[T]
    next_cursor: str | None


class _Listing:
    """What a paginator lists, for ``repr`` and error messages."""

    def __init__(self, endpoint: str, method: str, path: str) -> None:
        self.endpoint = endpoint
        self.method = method
        self.path = path

    def check_progress(self, cursor: str | None, page: Page[Any]) -> None:
        # A server that hands back the cursor it was given would make iteration endless.
        if page.next_cursor is not None and page.next_cursor == cursor:
            raise ImmutaResponseError.repeated_cursor(
                RequestContext(self.endpoint, self.method, self.path, 1), cursor
            )

    def __repr__(self) -> str:
        return f"{self.endpoint} {self.method} {self.path}"


class Paginator(Generic[T]):
    """Iterate all items of a listing endpoint, one page request at a time.

    ``for item in paginator`` yields items; :meth:`pages` yields :class:`Page` objects;
    :meth:`get_page` fetches exactly one page.
    """

    def __init__(
        self,
        fetch_page: Callable[[str | None], Page[T]],
        *,
        endpoint: str,
        method: str,
        path: str,
    ) -> None:
        self._fetch_page = fetch_page
        self._listing = _Listing(endpoint, method, path)

    def get_page(self, cursor: str | None = None) -> Page[T]:
        """Fetch one page: the first one, or the one at ``cursor`` (a previous ``next_cursor``)."""
        return self._fetch_page(cursor)

    def pages(self) -> Iterator[Page[T]]:
        """Yield pages from the first until the one whose ``next_cursor`` is ``None``."""
        cursor: str | None = None
        while True:
            page = self._fetch_page(cursor)
            self._listing.check_progress(cursor, page)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items

    def __repr__(self) -> str:
        return f"<Paginator {self._listing!r}>"


class AsyncPaginator(Generic[T]):
    """The async twin of :class:`Paginator`: ``async for``, ``pages()``, ``await get_page()``.

    Awaiting the paginator itself returns it, so both ``async for x in client.list_tasks(...)``
    and ``async for x in await client.list_tasks(...)`` work.
    """

    def __init__(
        self,
        fetch_page: Callable[[str | None], Awaitable[Page[T]]],
        *,
        endpoint: str,
        method: str,
        path: str,
    ) -> None:
        self._fetch_page = fetch_page
        self._listing = _Listing(endpoint, method, path)

    async def get_page(self, cursor: str | None = None) -> Page[T]:
        """Fetch one page: the first one, or the one at ``cursor`` (a previous ``next_cursor``)."""
        return await self._fetch_page(cursor)

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Yield pages from the first until the one whose ``next_cursor`` is ``None``."""
        cursor: str | None = None
        while True:
            page = await self._fetch_page(cursor)
            self._listing.check_progress(cursor, page)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    def __await__(self) -> Generator[Any, None, AsyncPaginator[T]]:
        return self._itself().__await__()

    async def _itself(self) -> AsyncPaginator[T]:
        return self

    def __repr__(self) -> str:
        return f"<AsyncPaginator {self._listing!r}>"
