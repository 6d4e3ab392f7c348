"""``AsyncImmutaClient``: the asyncio client. Only the sending loop lives here; see ``_base.py``."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying

from immuta_provider.client import endpoints as ep
from immuta_provider.client._base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_AFTER_CAP,
    DEFAULT_TOTAL_TIMEOUT,
    HTTP_BACKENDS,
    KEEPALIVE_EXPIRY,
    MAX_CONNECTIONS,
    Answer,
    Call,
    ClientConfig,
    ClientCore,
    HttpBackend,
    M,
    Request,
    prepare_request,
)
from immuta_provider.client.auth import DEFAULT_AUTH_METHOD
from immuta_provider.client.errors import (
    ImmutaAuthenticationError,
    ImmutaError,
    ImmutaValidationError,
)
from immuta_provider.client.models import (
    CancelTaskRunResult,
    Connection,
    DataObject,
    Task,
    TaskReference,
    TaskRun,
)
from immuta_provider.client.pagination import AsyncPaginator, Page
from immuta_provider.client.retries import retrying_options

if TYPE_CHECKING:
    from immuta_provider.client._aiohttp import AiohttpSender

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def _within(work: Coroutine[Any, Any, T], seconds: float) -> T:
        """``await work``, cancelled after ``seconds`` (raises ``TimeoutError``)."""
        async with asyncio.timeout(max(seconds, 0.0)):
            return await work

else:  # pragma: no cover - Python 3.10

    async def _within(work: Coroutine[Any, Any, T], seconds: float) -> T:
        """``await work``, cancelled after ``seconds`` (raises ``TimeoutError``)."""
        try:
            return await asyncio.wait_for(work, max(seconds, 0.0))
        except asyncio.TimeoutError:
            raise TimeoutError from None


class AsyncImmutaClient(ClientCore):
    """Asyncio client for Immuta's Connections API; the same methods as ``ImmutaClient``.

    Methods are coroutines, except the listing methods, which return an :class:`AsyncPaginator`
    at once (``async for item in client.list_tasks(key)``).

    Args:
        base_url: the tenant, e.g. ``https://acme.hosted.immutacloud.com`` (http or https).
        api_key: an Immuta API key; kept as a ``SecretStr``, never logged or shown.
        max_retries: retries after the first attempt, for retryable failures only.
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for data from the server.
        total_timeout: wall-clock cap in seconds for one call, retries and waits included.
        retry_after_cap: the longest ``Retry-After`` (seconds) honoured.
        verify: TLS verification: ``True``, ``False`` or the path of a CA bundle.
        transport: an ``httpx.AsyncBaseTransport`` to send through (tests, benchmarks); the
            client then sends with httpx.
        sleep: how to wait between retries (tests pass a recorder instead of ``asyncio.sleep``).
        http_backend: ``"aiohttp"``, ``"httpx"``, or ``"auto"`` (the default): aiohttp when it is
            installed (``pip install 'airflow-provider-immuta[aiohttp]'``) and no ``transport`` is
            given, else httpx. Both send the same requests and raise the same errors; aiohttp
            costs about a quarter of the CPU per request, which matters in a triggerer.
        auth_method: ``"auto"`` (the default: exchange the key for a token at
            ``POST /bim/apikey/authenticate``, or send ``Bearer <API key>`` where the tenant has
            no exchange), ``"exchange"``, ``"bearer-key"`` or ``"raw-key"`` (``Authorization:
            <API key>``). See ``immuta_provider.client.auth``.
        on_secret: called with each new token before it is used (a hook passes Airflow's
            ``amask_secret``); awaited if it returns an awaitable.

    The token is shared by every coroutine using the client (in a triggerer: every trigger on the
    Airflow connection), renewed before it expires and when Immuta answers 401 (that call is
    repeated once); requests that meet an expired token together wait for one exchange.

    One connection pool per client: reuse the client and close it
    (``async with AsyncImmutaClient(...)`` or :meth:`aclose`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        http_backend: HttpBackend = "auto",
        auth_method: str = DEFAULT_AUTH_METHOD,
        on_secret: Callable[[str], object] | None = None,
    ) -> None:
        super().__init__(
            ClientConfig.create(
                base_url,
                api_key,
                max_retries=max_retries,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                total_timeout=total_timeout,
                retry_after_cap=retry_after_cap,
                verify=verify,
                auth_method=auth_method,
            ),
            on_secret=on_secret,
        )
        self._auth_lock = asyncio.Lock()
        self._aiohttp = self._aiohttp_sender(http_backend, transport)
        # Only one of the two pools exists (each loads the CA bundle when it is made).
        self._http = (
            httpx.AsyncClient(transport=transport, **self._http_options())
            if self._aiohttp is None
            else None
        )
        # Requests beyond the pool's connections wait here (a FIFO, cheap) rather than in httpx's
        # pool queue, whose cost grows with its length (see MAX_CONNECTIONS).
        self._in_flight = asyncio.Semaphore(MAX_CONNECTIONS)
        policy = self._retry_policy
        self._retry_idempotent = AsyncRetrying(
            sleep=sleep, **retrying_options(policy, idempotent=True)
        )
        self._retry_unsafe = AsyncRetrying(
            sleep=sleep, **retrying_options(policy, idempotent=False)
        )

    def _aiohttp_sender(
        self, http_backend: str, transport: httpx.AsyncBaseTransport | None
    ) -> AiohttpSender | None:
        if http_backend not in HTTP_BACKENDS:
            raise ImmutaValidationError(
                f"http_backend {http_backend!r} must be one of {', '.join(HTTP_BACKENDS)}"
            )
        if http_backend == "httpx" or (http_backend == "auto" and transport is not None):
            return None
        if transport is not None:
            raise ImmutaValidationError(
                "http_backend='aiohttp' cannot send through an httpx transport; "
                "leave out transport= or use http_backend='httpx'"
            )
        try:
            # Imported here: `import immuta_provider.client` stays free of aiohttp.
            from immuta_provider.client._aiohttp import AiohttpSender
        except ImportError:
            if http_backend == "auto":
                return None
            raise ImmutaValidationError(
                "http_backend='aiohttp' needs aiohttp: "
                "pip install 'airflow-provider-immuta[aiohttp]'"
            ) from None
        config = self._config
        return AiohttpSender(
            base_url=config.base_url,
            headers=self._headers(),
            ssl_context=self._ssl_context(),
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_connections=MAX_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )

    @property
    def http_backend(self) -> str:
        """The library this client sends with: ``"aiohttp"`` or ``"httpx"``."""
        return "httpx" if self._aiohttp is None else "aiohttp"

    # --- sending ---------------------------------------------------------------------------

    async def _authorization(self, call: Call) -> dict[str, str] | None:
        """The ``Authorization`` header for this attempt; exchanges the key first if needed."""
        if not call.request.endpoint.authenticated:
            return None
        credentials = self._credentials
        headers, generation = credentials.headers()
        if headers is None:
            async with self._auth_lock:
                # Whoever held the lock before us may have renewed the token already.
                headers, generation = credentials.headers()
                if headers is None:
                    await self._exchange()
                    headers, generation = credentials.stored_headers()
        call.auth_generation = generation
        return headers

    async def _exchange(self) -> None:
        """Exchange the API key for a token (with the lock held); retried like a GET."""
        call = self._start(self._exchange_request())
        try:
            response = await self._send_call(call)
        except ImmutaError as error:
            self._exchange_error(error)
            return
        token, lifetime = self._parse_exchange(call, response)
        if self._credentials.on_secret is not None:
            registered = self._credentials.on_secret(token)
            if inspect.isawaitable(registered):
                await registered
        self._credentials.store_token(token, lifetime)

    async def _attempt(self, call: Call) -> Answer:
        # Read timeouts apply to each socket read; the call's deadline caps the whole attempt,
        # so a server that trickles its answer cannot stretch a call past the total timeout.
        # Before the deadline and outside the in-flight slots: an exchange is a call of its own
        # (its own deadline and retries) and needs one of the slots.
        headers = await self._authorization(call)
        try:
            return await _within(self._send_once(call, headers), call.deadline - time.monotonic())
        except TimeoutError:
            raise httpx.ReadTimeout("the call's total timeout was used up") from None

    async def _send_once(self, call: Call, headers: dict[str, str] | None) -> Answer:
        request = call.request
        response: Answer
        async with self._in_flight:
            headers = self._latest_authorization(call, headers)
            if self._aiohttp is not None:
                response = await self._aiohttp.send(request, self._attempt_budget(call), headers)
            else:
                assert self._http is not None  # one of the two exists
                response = await self._http.request(
                    request.method,
                    request.path,
                    params=request.params,
                    json=request.json,
                    headers=headers,
                    timeout=self._begin_attempt(call),
                )
        if not 200 <= response.status_code < 300:
            raise self._api_error(call, response)
        return response

    async def _send(self, request: Request) -> tuple[Call, Answer]:
        call = self._start(request)
        try:
            return call, await self._send_call(call)
        except ImmutaAuthenticationError:
            if not self._rejected(call):
                raise
        # The token was refused (expired early, or revoked): once more with a new one.
        repeat = Call(request, call.deadline)
        return repeat, await self._send_call(repeat)

    async def _send_call(self, call: Call) -> Answer:
        try:
            # The first attempt runs outside tenacity: most calls succeed, and setting up a
            # tenacity loop for each of them would cost more than the rest of the client.
            try:
                return await self._attempt(call)
            except Exception as error:
                if not self._may_retry(call, error):
                    raise
                first_error = error
            # Retried outside the except block, so later errors do not chain onto the first.
            return await self._retry(call, first_error)
        except httpx.RequestError as error:
            raise self._transport_error(call, error) from error

    async def _retry(self, call: Call, first_error: Exception) -> Answer:
        # Tenacity's attempt 1 re-raises the failure we already have, so attempt numbers,
        # waits, stop rules and logging all stay tenacity's own.
        replayed = False

        async def attempt(call: Call) -> Answer:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first_error
            return await self._attempt(call)

        endpoint = call.request.endpoint
        retrying = self._retry_idempotent if endpoint.idempotent else self._retry_unsafe
        return await retrying(attempt, call)

    async def _call(self, endpoint: ep.Endpoint[M], **args: Any) -> M:
        call, response = await self._send(prepare_request(endpoint, args))
        return self._parse(endpoint, call, response)

    def _list(self, endpoint: ep.Endpoint[M], **args: Any) -> AsyncPaginator[M]:
        request = prepare_request(endpoint, args)

        async def fetch_page(cursor: str | None) -> Page[M]:
            call, response = await self._send(request.for_page(cursor))
            return self._parse_page(endpoint, call, response)

        return AsyncPaginator(
            fetch_page, endpoint=endpoint.name, method=request.method, path=request.path
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._aiohttp is not None:
            await self._aiohttp.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncImmutaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- connections -----------------------------------------------------------------------

    async def get_connection(self, connection_key: str) -> Connection:
        """Get a connection (its secrets read ``"[REDACTED]"``)."""
        return await self._call(ep.GET_CONNECTION, connection_key=connection_key)

    async def delete_connection(self, connection_key: str) -> TaskReference:
        """Delete an INACTIVE connection and its data objects; returns the deletion task."""
        return await self._call(ep.DELETE_CONNECTION, connection_key=connection_key)

    async def update_connection(
        self, connection_key: str, changes: Mapping[str, Any], *, dry_run: bool = False
    ) -> Connection:
        """Partially update an ACTIVE/UNHEALTHY connection (``changes`` uses wire names).

        Values equal to ``"[REDACTED]"`` are left out (with a warning): that placeholder is not
        the secret. ``dry_run=True`` validates and returns the would-be result without saving.
        """
        return await self._call(
            ep.UPDATE_CONNECTION, connection_key=connection_key, changes=changes, dry_run=dry_run
        )

    async def activate_connection(self, connection_key: str) -> Connection:
        """Activate an INACTIVE connection."""
        return await self._call(ep.ACTIVATE_CONNECTION, connection_key=connection_key)

    async def deactivate_connection(self, connection_key: str) -> Connection:
        """Deactivate an ACTIVE/UNHEALTHY connection."""
        return await self._call(ep.DEACTIVATE_CONNECTION, connection_key=connection_key)

    async def validate_connection(self, connection_key: str) -> Connection:
        """Validate each enabled component; returns the connection with its updated health."""
        return await self._call(ep.VALIDATE_CONNECTION, connection_key=connection_key)

    def list_connections(self, *, page_size: int | None = None) -> AsyncPaginator[Connection]:
        """All connections, fetched lazily ``page_size`` (1..100) at a time."""
        return self._list(ep.LIST_CONNECTIONS, page_size=page_size)

    async def create_connection(self, body: Mapping[str, Any]) -> Connection:
        """Create a connection from a wire-format body (``connectionKey``, ``technology``...)."""
        return await self._call(ep.CREATE_CONNECTION, body=body)

    # --- data objects ----------------------------------------------------------------------

    def search_data_objects(
        self,
        connection_key: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
    ) -> AsyncPaginator[DataObject]:
        """Data objects of a connection whose fields equal ``attributes`` (wire names)."""
        return self._list(
            ep.SEARCH_DATA_OBJECTS,
            connection_key=connection_key,
            attributes=attributes,
            page_size=page_size,
        )

    async def get_data_object(self, connection_key: str, data_object_id: str) -> DataObject:
        """Get one data object (without its children)."""
        return await self._call(
            ep.GET_DATA_OBJECT, connection_key=connection_key, data_object_id=data_object_id
        )

    async def delete_data_object(self, connection_key: str, data_object_id: str) -> TaskReference:
        """Delete a data object and its descendants; returns the deletion task."""
        return await self._call(
            ep.DELETE_DATA_OBJECT, connection_key=connection_key, data_object_id=data_object_id
        )

    async def update_data_object(
        self, connection_key: str, data_object_id: str, changes: Mapping[str, Any]
    ) -> DataObject:
        """Partially update a data object (e.g. ``{"name": ...}``); returns the whole object."""
        return await self._call(
            ep.UPDATE_DATA_OBJECT,
            connection_key=connection_key,
            data_object_id=data_object_id,
            changes=changes,
        )

    def list_data_object_children(
        self, connection_key: str, data_object_id: str, *, page_size: int | None = None
    ) -> AsyncPaginator[DataObject]:
        """The direct children of a data object, fetched lazily."""
        return self._list(
            ep.LIST_DATA_OBJECT_CHILDREN,
            connection_key=connection_key,
            data_object_id=data_object_id,
            page_size=page_size,
        )

    # --- tasks -----------------------------------------------------------------------------

    def list_tasks(
        self,
        connection_key: str,
        *,
        type: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        created_by: str | None = None,
        parent_id: str | None = None,
        page_size: int | None = None,
    ) -> AsyncPaginator[Task]:
        """Tasks of a connection, optionally filtered, fetched lazily."""
        return self._list(
            ep.LIST_TASKS,
            connection_key=connection_key,
            type=type,
            status=status,
            trigger=trigger,
            created_by=created_by,
            parent_id=parent_id,
            page_size=page_size,
        )

    async def create_task(
        self,
        connection_key: str,
        type: str = "DATA_OBJECT_SYNC",
        *,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Task:
        """Create a task (a data object sync by default); it starts a run at once.

        Not retried unless the request provably never reached Immuta, so a retry cannot start
        a second sync.
        """
        return await self._call(
            ep.CREATE_TASK, connection_key=connection_key, type=type, extra_body=extra_body
        )

    async def get_task(self, connection_key: str, task_id: str) -> Task:
        """Get a task."""
        return await self._call(ep.GET_TASK, connection_key=connection_key, task_id=task_id)

    def list_task_runs(
        self,
        connection_key: str,
        task_id: str,
        *,
        status: str | None = None,
        page_size: int | None = None,
    ) -> AsyncPaginator[TaskRun]:
        """Runs of a task, optionally filtered by status, fetched lazily."""
        return self._list(
            ep.LIST_TASK_RUNS,
            connection_key=connection_key,
            task_id=task_id,
            status=status,
            page_size=page_size,
        )

    async def get_task_run(self, connection_key: str, task_id: str, run_id: str) -> TaskRun:
        """Get a task run (poll this until ``run.is_terminal``)."""
        return await self._call(
            ep.GET_TASK_RUN, connection_key=connection_key, task_id=task_id, run_id=run_id
        )

    async def cancel_task_run(
        self, connection_key: str, task_id: str, run_id: str
    ) -> CancelTaskRunResult:
        """Ask Immuta to cancel a run (it goes CANCELING, then CANCELED)."""
        return await self._call(
            ep.CANCEL_TASK_RUN, connection_key=connection_key, task_id=task_id, run_id=run_id
        )
