"""``ImmutaClient``: the blocking client. Only the sending loop lives here; see ``_base.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import Retrying

from immuta_provider.client import endpoints as ep
from immuta_provider.client._base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_AFTER_CAP,
    DEFAULT_TOTAL_TIMEOUT,
    Call,
    ClientConfig,
    ClientCore,
    M,
    Request,
    prepare_request,
)
from immuta_provider.client._deadline import CALL_DEADLINE, deadline_transport
from immuta_provider.client.auth import DEFAULT_AUTH_METHOD
from immuta_provider.client.errors import ImmutaAuthenticationError, ImmutaError
from immuta_provider.client.models import (
    CancelTaskRunResult,
    Connection,
    DataObject,
    Task,
    TaskReference,
    TaskRun,
)
from immuta_provider.client.pagination import Page, Paginator
from immuta_provider.client.retries import retrying_options


class ImmutaClient(ClientCore):
    """Blocking client for Immuta's Connections API.

    Args:
        base_url: the tenant, e.g. ``https://acme.hosted.immutacloud.com`` (http or https).
        api_key: an Immuta API key; kept as a ``SecretStr``, never logged or shown.
        max_retries: retries after the first attempt, for retryable failures only.
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for data from the server.
        total_timeout: wall-clock cap in seconds for one call, retries and waits included.
        retry_after_cap: the longest ``Retry-After`` (seconds) honoured.
        verify: TLS verification: ``True``, ``False`` or the path of a CA bundle.
        transport: an ``httpx.BaseTransport`` to send through (tests, benchmarks).
        sleep: how to wait between retries (tests pass a recorder instead of ``time.sleep``).
        auth_method: ``"auto"`` (the default: exchange the key for a token at
            ``POST /bim/apikey/authenticate``, or send ``Bearer <API key>`` where the tenant has
            no exchange), ``"exchange"``, ``"bearer-key"`` or ``"raw-key"`` (``Authorization:
            <API key>``). See ``immuta_provider.client.auth``.
        on_secret: called with each new token before it is used (a hook passes Airflow's
            ``mask_secret``).

    The token is shared by every thread using the client, renewed before it expires and when
    Immuta answers 401 (that call is repeated once); threads that meet an expired token together
    wait for one exchange.

    One connection pool per client: reuse the client and close it (``with ImmutaClient(...)``
    or :meth:`close`).
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
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
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
        self._auth_lock = threading.Lock()
        options = self._http_options()
        if transport is None:
            # Every socket operation ends by the call's deadline (_deadline.py): a server that
            # trickles its answer cannot stretch a call past the total timeout.
            transport = deadline_transport(self._ssl_context(), options["limits"])
        self._http = httpx.Client(transport=transport, **options)
        policy = self._retry_policy
        self._retry_idempotent = Retrying(sleep=sleep, **retrying_options(policy, idempotent=True))
        self._retry_unsafe = Retrying(sleep=sleep, **retrying_options(policy, idempotent=False))

    # --- sending ---------------------------------------------------------------------------

    def _authorization(self, call: Call) -> dict[str, str] | None:
        """The ``Authorization`` header for this attempt; exchanges the key first if needed."""
        if not call.request.endpoint.authenticated:
            return None
        credentials = self._credentials
        headers, generation = credentials.headers()
        if headers is None:
            with self._auth_lock:
                # Whoever held the lock before us may have renewed the token already.
                headers, generation = credentials.headers()
                if headers is None:
                    self._exchange()
                    headers, generation = credentials.stored_headers()
        call.auth_generation = generation
        return headers

    def _exchange(self) -> None:
        """Exchange the API key for a token (with the lock held); retried like a GET."""
        call = self._start(self._exchange_request())
        try:
            response = self._send_call(call)
        except ImmutaError as error:
            self._exchange_error(error)
            return
        token, lifetime = self._parse_exchange(call, response)
        if self._credentials.on_secret is not None:
            self._credentials.on_secret(token)
        self._credentials.store_token(token, lifetime)

    def _attempt(self, call: Call) -> httpx.Response:
        request = call.request
        headers = self._authorization(call)
        timeout = self._begin_attempt(call)
        token = CALL_DEADLINE.set(call.deadline)
        try:
            response = self._http.request(
                request.method,
                request.path,
                params=request.params,
                json=request.json,
                headers=headers,
                timeout=timeout,
            )
        finally:
            CALL_DEADLINE.reset(token)
        if not response.is_success:
            raise self._api_error(call, response)
        return response

    def _send(self, request: Request) -> tuple[Call, httpx.Response]:
        call = self._start(request)
        try:
            return call, self._send_call(call)
        except ImmutaAuthenticationError:
            if not self._rejected(call):
                raise
        # The token was refused (expired early, or revoked): once more with a new one.
        repeat = Call(request, call.deadline)
        return repeat, self._send_call(repeat)

    def _send_call(self, call: Call) -> httpx.Response:
        try:
            # The first attempt runs outside tenacity: most calls succeed, and setting up a
            # tenacity loop for each of them would cost more than the rest of the client.
            try:
                return self._attempt(call)
            except Exception as error:
                if not self._may_retry(call, error):
                    raise
                first_error = error
            # Retried outside the except block, so later errors do not chain onto the first.
            return self._retry(call, first_error)
        except httpx.RequestError as error:
            raise self._transport_error(call, error) from error

    def _retry(self, call: Call, first_error: Exception) -> httpx.Response:
        # Tenacity's attempt 1 re-raises the failure we already have, so attempt numbers,
        # waits, stop rules and logging all stay tenacity's own.
        replayed = False

        def attempt(call: Call) -> httpx.Response:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first_error
            return self._attempt(call)

        endpoint = call.request.endpoint
        retrying = self._retry_idempotent if endpoint.idempotent else self._retry_unsafe
        return retrying(attempt, call)

    def _call(self, endpoint: ep.Endpoint[M], **args: Any) -> M:
        call, response = self._send(prepare_request(endpoint, args))
        return self._parse(endpoint, call, response)

    def _list(self, endpoint: ep.Endpoint[M], **args: Any) -> Paginator[M]:
        request = prepare_request(endpoint, args)

        def fetch_page(cursor: str | None) -> Page[M]:
            call, response = self._send(request.for_page(cursor))
            return self._parse_page(endpoint, call, response)

        return Paginator(
            fetch_page, endpoint=endpoint.name, method=request.method, path=request.path
        )

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ImmutaClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- connections -----------------------------------------------------------------------

    def get_connection(self, connection_key: str) -> Connection:
        """Get a connection (its secrets read ``"[REDACTED]"``)."""
        return self._call(ep.GET_CONNECTION, connection_key=connection_key)

    def delete_connection(self, connection_key: str) -> TaskReference:
        """Delete an INACTIVE connection and its data objects; returns the deletion task."""
        return self._call(ep.DELETE_CONNECTION, connection_key=connection_key)

    def update_connection(
        self, connection_key: str, changes: Mapping[str, Any], *, dry_run: bool = False
    ) -> Connection:
        """Partially update an ACTIVE/UNHEALTHY connection (``changes`` uses wire names).

        Values equal to ``"[REDACTED]"`` are left out (with a warning): that placeholder is not
        the secret. ``dry_run=True`` validates and returns the would-be result without saving.
        """
        return self._call(
            ep.UPDATE_CONNECTION, connection_key=connection_key, changes=changes, dry_run=dry_run
        )

    def activate_connection(self, connection_key: str) -> Connection:
        """Activate an INACTIVE connection."""
        return self._call(ep.ACTIVATE_CONNECTION, connection_key=connection_key)

    def deactivate_connection(self, connection_key: str) -> Connection:
        """Deactivate an ACTIVE/UNHEALTHY connection."""
        return self._call(ep.DEACTIVATE_CONNECTION, connection_key=connection_key)

    def validate_connection(self, connection_key: str) -> Connection:
        """Validate each enabled component; returns the connection with its updated health."""
        return self._call(ep.VALIDATE_CONNECTION, connection_key=connection_key)

    def list_connections(self, *, page_size: int | None = None) -> Paginator[Connection]:
        """All connections, fetched lazily ``page_size`` (1..100) at a time."""
        return self._list(ep.LIST_CONNECTIONS, page_size=page_size)

    def create_connection(self, body: Mapping[str, Any]) -> Connection:
        """Create a connection from a wire-format body (``connectionKey``, ``technology``...)."""
        return self._call(ep.CREATE_CONNECTION, body=body)

    # --- data objects ----------------------------------------------------------------------

    def search_data_objects(
        self,
        connection_key: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
    ) -> Paginator[DataObject]:
        """Data objects of a connection whose fields equal ``attributes`` (wire names)."""
        return self._list(
            ep.SEARCH_DATA_OBJECTS,
            connection_key=connection_key,
            attributes=attributes,
            page_size=page_size,
        )

    def get_data_object(self, connection_key: str, data_object_id: str) -> DataObject:
        """Get one data object (without its children)."""
        return self._call(
            ep.GET_DATA_OBJECT, connection_key=connection_key, data_object_id=data_object_id
        )

    def delete_data_object(self, connection_key: str, data_object_id: str) -> TaskReference:
        """Delete a data object and its descendants; returns the deletion task."""
        return self._call(
            ep.DELETE_DATA_OBJECT, connection_key=connection_key, data_object_id=data_object_id
        )

    def update_data_object(
        self, connection_key: str, data_object_id: str, changes: Mapping[str, Any]
    ) -> DataObject:
        """Partially update a data object (e.g. ``{"name": ...}``); returns the whole object."""
        return self._call(
            ep.UPDATE_DATA_OBJECT,
            connection_key=connection_key,
            data_object_id=data_object_id,
            changes=changes,
        )

    def list_data_object_children(
        self, connection_key: str, data_object_id: str, *, page_size: int | None = None
    ) -> Paginator[DataObject]:
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
    ) -> Paginator[Task]:
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

    def create_task(
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
        return self._call(
            ep.CREATE_TASK, connection_key=connection_key, type=type, extra_body=extra_body
        )

    def get_task(self, connection_key: str, task_id: str) -> Task:
        """Get a task."""
        return self._call(ep.GET_TASK, connection_key=connection_key, task_id=task_id)

    def list_task_runs(
        self,
        connection_key: str,
        task_id: str,
        *,
        status: str | None = None,
        page_size: int | None = None,
    ) -> Paginator[TaskRun]:
        """Runs of a task, optionally filtered by status, fetched lazily."""
        return self._list(
            ep.LIST_TASK_RUNS,
            connection_key=connection_key,
            task_id=task_id,
            status=status,
            page_size=page_size,
        )

    def get_task_run(self, connection_key: str, task_id: str, run_id: str) -> TaskRun:
        """Get a task run (poll this until ``run.is_terminal``)."""
        return self._call(
            ep.GET_TASK_RUN, connection_key=connection_key, task_id=task_id, run_id=run_id
        )

    def cancel_task_run(
        self, connection_key: str, task_id: str, run_id: str
    ) -> CancelTaskRunResult:
        """Ask Immuta to cancel a run (it goes CANCELING, then CANCELED)."""
        return self._call(
            ep.CANCEL_TASK_RUN, connection_key=connection_key, task_id=task_id, run_id=run_id
        )
