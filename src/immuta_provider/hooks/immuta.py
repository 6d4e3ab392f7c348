"""``ImmutaHook``: an Airflow connection of type ``immuta`` turned into Immuta API clients."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from immuta_provider._compat import (
    AirflowException,
    BaseHook,
    aget_connection,
    amask_secret,
    mask_secret,
)
from immuta_provider.client import AsyncImmutaClient, ImmutaClient, ui
from immuta_provider.client.auth import DESCRIPTIONS
from immuta_provider.client.errors import (
    ImmutaAPIError,
    ImmutaAuthenticationError,
    ImmutaError,
    ImmutaNotFoundError,
    ImmutaPermissionError,
    ImmutaResponseError,
    ImmutaTimeoutError,
    ImmutaTransportError,
)
from immuta_provider.client.statuses import RunStatuses
from immuta_provider.client.vocabulary import AUTH_METHODS, TOKEN_EXCHANGE_PATH
from immuta_provider.hooks.connection_settings import (
    CONN_TYPE,
    MAX_CONNECT_TIMEOUT,
    ImmutaConnectionSettings,
    InvalidImmutaConnection,
    settings_from_connection,
)
from immuta_provider.hooks.settings_cache import shared_settings
from immuta_provider.hooks.shared_clients import shared_async_clients

# The connection test should answer in seconds: one attempt, no retries.
_TEST_CONNECTION_RETRIES = 0


class ImmutaHook(BaseHook):
    """Interact with Immuta's Connections API through an Airflow connection of type ``immuta``.

    The connection's host is the Immuta URL and its password the API key; see
    ``docs/connection.md`` for the extras (timeout, retries, TLS). The hook validates the connection
    before building a client, so a missing host or key fails with a message naming the Airflow
    connection and what to fix.

    :param immuta_conn_id: The Airflow connection to use.
    """

    conn_name_attr = "immuta_conn_id"
    default_conn_name = "immuta_default"
    conn_type = CONN_TYPE
    hook_name = "Immuta"

    def __init__(self, immuta_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.immuta_conn_id = immuta_conn_id
        self._settings: ImmutaConnectionSettings | None = None
        self._client: ImmutaClient | None = None

    # -- connection form (Airflow 2.11; 3.2+ reads the same from get_provider_info()) ----------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form, for Airflow versions that build it from the hook."""
        # Only the Airflow 2.11 web server calls this; 3.x does not ship these packages.
        from flask_appbuilder.fieldwidgets import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            BS3TextFieldWidget,
        )
        from flask_babel import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            lazy_gettext,
        )
        from wtforms import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            BooleanField,
            IntegerField,
            StringField,
        )
        from wtforms.validators import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            AnyOf,
            NumberRange,
            Optional,
        )

        from immuta_provider import connection_form

        labels = {name: spec["label"] for name, spec in connection_form.CONN_FIELDS.items()}
        helps = {name: spec["description"] for name, spec in connection_form.CONN_FIELDS.items()}
        return {
            "timeout": IntegerField(
                lazy_gettext(labels["timeout"]),
                validators=[Optional(), NumberRange(min=1)],
                widget=BS3TextFieldWidget(),
                description=helps["timeout"],
                default=int(connection_form.CONN_FIELDS["timeout"]["schema"]["default"]),
            ),
            "max_retries": IntegerField(
                lazy_gettext(labels["max_retries"]),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                description=helps["max_retries"],
                default=connection_form.CONN_FIELDS["max_retries"]["schema"]["default"],
            ),
            "verify_ssl": BooleanField(
                lazy_gettext(labels["verify_ssl"]),
                description=helps["verify_ssl"],
                default=True,
            ),
            "ca_bundle": StringField(
                lazy_gettext(labels["ca_bundle"]),
                widget=BS3TextFieldWidget(),
                description=helps["ca_bundle"],
            ),
            **{
                name: StringField(
                    lazy_gettext(labels[name]),
                    widget=BS3TextFieldWidget(),
                    description=helps[name],
                )
                for name in connection_form.STATUS_FIELDS
            },
            # 2.11 forms take only string, integer, password and boolean fields: no select.
            "auth_method": StringField(
                lazy_gettext(labels["auth_method"]),
                validators=[Optional(), AnyOf(AUTH_METHODS)],
                widget=BS3TextFieldWidget(),
                description=helps["auth_method"],
                default=connection_form.CONN_FIELDS["auth_method"]["schema"]["default"],
            ),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and pre-filled standard fields (for Airflow versions that ask)."""
        from immuta_provider import connection_form

        behaviour = connection_form.UI_FIELD_BEHAVIOUR
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    # -- settings and clients -------------------------------------------------------------------

    @property
    def settings(self) -> ImmutaConnectionSettings:
        """The validated connection settings (read from Airflow once per hook)."""
        if self._settings is None:
            self._settings = self._settings_from(self.get_connection(self.immuta_conn_id))
            mask_secret(self._settings.api_key)
        return self._settings

    async def aget_settings(self) -> ImmutaConnectionSettings:
        """:attr:`settings`, read without blocking the event loop (for triggers).

        Triggers starting together share one read of the connection (see ``settings_cache``).
        """
        if self._settings is None:
            self._settings = await shared_settings.get(self.immuta_conn_id, self._aread_settings)
        return self._settings

    async def _aread_settings(self) -> ImmutaConnectionSettings:
        settings = self._settings_from(await aget_connection(self.immuta_conn_id))
        await amask_secret(settings.api_key)
        return settings

    def _settings_from(self, conn: Any) -> ImmutaConnectionSettings:
        if getattr(conn, "conn_type", None) not in (None, "", CONN_TYPE):
            self.log.warning(
                "Airflow connection %r has type %r, not %r; reading it as an Immuta connection.",
                self.immuta_conn_id,
                conn.conn_type,
                CONN_TYPE,
            )
        try:
            return settings_from_connection(conn)
        except InvalidImmutaConnection as exc:
            raise AirflowException(str(exc)) from None

    @property
    def run_statuses(self) -> RunStatuses:
        """The tenant's run status names: the connection's ``success_statuses``,
        ``failure_statuses`` and ``active_statuses`` extras, or the defaults."""
        return self.settings.statuses

    @property
    def base_url(self) -> str:
        """The Immuta URL of the connection."""
        return self.settings.base_url

    def get_client(self) -> ImmutaClient:
        """The hook's synchronous client, built on first use and reused afterwards."""
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def get_conn(self) -> ImmutaClient:
        """Same as :meth:`get_client` (the name ``BaseHook`` expects)."""
        return self.get_client()

    def new_client(self, *, max_retries: int | None = None) -> ImmutaClient:
        """A new synchronous client that the caller owns and must close.

        :param max_retries: Override the connection's retry count (e.g. 0 for a quick probe).
        """
        # Each token the client gets is masked in task logs like the key.
        return ImmutaClient(
            **self.settings.client_kwargs(max_retries=max_retries), on_secret=mask_secret
        )

    @asynccontextmanager
    async def shared_async_client(self) -> AsyncIterator[AsyncImmutaClient]:
        """Borrow the process-wide async client of this connection (one pool for all triggers).

        Use as ``async with hook.shared_async_client() as client:``; do not close the client.
        """
        settings = await self.aget_settings()
        async with shared_async_clients.lease(settings) as client:
            yield client

    def close(self) -> None:
        """Close the synchronous client, if one was built."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- Immuta UI links ------------------------------------------------------------------------

    def connection_url(self, connection_key: str) -> str:
        """The Immuta UI page of a connection."""
        return ui.connection_url(self.base_url, connection_key)

    def task_run_url(self, connection_key: str, immuta_task_id: str, run_id: str) -> str:
        """The Immuta UI page of a task run."""
        return ui.task_run_url(self.base_url, connection_key, immuta_task_id, run_id)

    # -- the connection form's Test button ------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authenticated call (list one connection) and say what failed, if anything.

        Airflow shows the message next to the Test button and prints it for
        ``airflow connections test``. The API key never appears in it.
        """
        try:
            settings = self.settings
        except AirflowException as exc:
            return False, str(exc)
        client: ImmutaClient | None = None
        try:
            with self.new_client(max_retries=_TEST_CONNECTION_RETRIES) as client:
                client.list_connections(page_size=1).get_page()
        except ImmutaError as exc:
            used = client.authenticated_by if client is not None else None
            return False, _redact(
                describe_connection_failure(exc, settings, authenticated_by=used),
                settings.api_key,
            )
        except (OSError, ValueError) as exc:  # e.g. an unreadable CA bundle
            message = f"Could not set up a client for {settings.base_url}: {exc}"
            return False, _redact(message, settings.api_key)
        return True, (
            f"Connected to Immuta at {settings.base_url}: authenticated by "
            f"{client.auth_description} (auth_method {settings.auth_method})."
        )


def _describe_exchange_failure(exc: ImmutaError, url: str, conn: str) -> str:
    """The connection test failed at ``POST /bim/apikey/authenticate``."""
    status = exc.status_code if isinstance(exc, ImmutaAPIError) else None
    where = f"POST {TOKEN_EXCHANGE_PATH}"
    if status in (401, 403):
        return (
            f"Immuta at {url} refused the API key when exchanging it for a token ({where} "
            f"answered {status}): set a valid key in the 'API key' field (the password) of {conn}."
        )
    if status in (404, 405):
        return (
            f"Immuta at {url} has no token exchange ({where} answered {status}): set the "
            f"'auth_method' extra of {conn} to auto, bearer-key or raw-key."
        )
    if isinstance(exc, ImmutaResponseError):
        return (
            f"Immuta at {url} answered the token exchange ({where}) without a token: {exc}. Check "
            f"the Immuta URL (host) of {conn}, or set its 'auth_method' extra to bearer-key."
        )
    return f"Exchanging the API key for a token at {url} failed: {exc}"


def _redact(message: str, secret: str) -> str:
    # Belt and braces: none of our messages include the key, but a proxy could echo it back.
    return message.replace(secret, "***") if secret else message


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return True
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "TLS" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def describe_connection_failure(
    exc: ImmutaError,
    settings: ImmutaConnectionSettings,
    *,
    authenticated_by: str | None = None,
) -> str:
    """A one-line diagnosis of a failed connection test, for the Airflow UI.

    :param authenticated_by: How the client authenticated when it failed (``exchange``,
        ``bearer-key``, ``raw-key``; ``None``: not known), so a 401 can say which step failed.
    """
    url = settings.base_url
    conn = f"Airflow connection {settings.conn_id!r}"
    if isinstance(exc, ImmutaTimeoutError):
        connect = min(settings.timeout, MAX_CONNECT_TIMEOUT)
        return (
            f"Timed out reaching {url} (connect timeout {connect:g}s, read timeout "
            f"{settings.timeout:g}s): check the Immuta URL and network access from Airflow; "
            f"if Immuta is only slow to answer, raise the 'timeout' extra of {conn}."
        )
    if isinstance(exc, ImmutaTransportError):
        if _is_tls_failure(exc):
            return (
                f"TLS error talking to {url}: {exc}. Check the certificate, or set the "
                f"'ca_bundle' extra of {conn} to your CA bundle."
            )
        return f"Cannot reach {url}: {exc}. Check the Immuta URL (host) of {conn}."
    if getattr(exc, "auth_step", None) == "exchange":
        return _describe_exchange_failure(exc, url, conn)
    if isinstance(exc, ImmutaAuthenticationError) and authenticated_by == "exchange":
        return (
            f"The API key was exchanged for a token, but Immuta at {url} refused the token for "
            f"GET /api/connections (401): the key's user may lack permission to use the "
            f"Connections API; if this tenant wants the key itself, set the 'auth_method' extra "
            f"of {conn} to bearer-key or raw-key."
        )
    if isinstance(exc, ImmutaAuthenticationError):
        sent = DESCRIPTIONS.get(authenticated_by or "", "sending the API key")
        return (
            f"Immuta at {url} rejected the API key (401) when {sent}: set a valid key in the "
            f"'API key' field (the password) of {conn}; if this tenant wants a token, set its "
            "'auth_method' extra to auto or exchange."
        )
    if isinstance(exc, ImmutaPermissionError):
        return (
            f"The API key was accepted but lacks permission to list connections (403) at {url}: "
            "use a key whose user may manage connections."
        )
    if isinstance(exc, ImmutaNotFoundError):
        return (
            f"{url} is not an Immuta API: GET /api/connections returned 404. Check the Immuta "
            f"URL (host) of {conn}."
        )
    if isinstance(exc, ImmutaResponseError):
        return (
            f"{url} is not an Immuta API: GET /api/connections answered {exc.status_code} with a "
            f"body that is not Immuta's JSON ({exc.body_excerpt[:80]!r}). Check the Immuta URL "
            f"(host) of {conn}."
        )
    if isinstance(exc, ImmutaAPIError):
        return f"Immuta at {url} answered {exc.status_code}: {exc.message or exc}"
    return f"Connection test against {url} failed: {exc}"
