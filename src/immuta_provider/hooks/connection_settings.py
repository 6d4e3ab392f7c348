"""Turn an Airflow connection of type ``immuta`` into validated client settings.

Nothing here imports Airflow or the HTTP client: it reads the plain attributes every Airflow
``Connection`` has (``conn_id``, ``host``, ``port``, ``password``, ``extra_dejson``), which keeps
the parsing rules testable on their own and identical on every Airflow version.

The rules (also in docs/connection.md):

* ``host`` is the Immuta URL. A full URL (``https://acme.hosted.immutacloud.com``) carries its
  scheme; a bare host name uses the ``scheme`` extra, ``https`` by default. A path is kept (an
  Immuta behind a reverse proxy prefix), a query or ``#fragment`` is refused.
* ``port`` is optional; it must agree with a port written in the URL.
* ``password`` is the API key. ``login`` and ``schema`` are not used.
* Extras: ``timeout`` (seconds per HTTP request, default 30), ``max_retries`` (default 3),
  ``verify_ssl`` (default true), ``ca_bundle`` (path to a PEM bundle), ``scheme``,
  ``auth_method`` (``auto``, ``exchange``, ``bearer-key``, ``raw-key``; default ``auto``), and the
  tenant's run status names ``success_statuses`` / ``failure_statuses`` / ``active_statuses``
  (each a JSON list or a comma-separated string; ``client/statuses.py``). Each may also
  be spelled ``extra__immuta__<name>`` (the prefix older Airflow UIs wrote). URI-form connections
  deliver every extra as a string, so ``"false"``, ``"0"``, ``"30"`` are understood.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from immuta_provider.client.statuses import (
    ACTIVE_EXTRA,
    FAILURE_EXTRA,
    SUCCESS_EXTRA,
    InvalidRunStatuses,
    RunStatuses,
    parse_status_list,
)
from immuta_provider.client.vocabulary import AUTH_METHODS

CONN_TYPE = "immuta"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_AUTH_METHOD = AUTH_METHODS[0]
# The client's connect timeout; a slow TCP handshake is a symptom, not a reason to wait 30 s.
MAX_CONNECT_TIMEOUT = 10.0
# Floor for the wall-clock cap on one client call, retries and Retry-After waits included.
MIN_TOTAL_TIMEOUT = 120.0

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class InvalidImmutaConnection(ValueError):
    """The Airflow connection cannot be used to reach Immuta; the message says what to fix."""


class AirflowConnectionLike(Protocol):
    """The attributes of an Airflow ``Connection`` that the settings are read from."""

    conn_id: str | None
    host: str | None
    port: int | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The connection's extras as a dict."""


@dataclass(frozen=True)
class ImmutaConnectionSettings:
    """Everything needed to build an Immuta client, validated.

    :param conn_id: The Airflow connection these settings were read from.
    :param base_url: The Immuta URL with scheme, without a trailing slash.
    :param api_key: The Immuta API key (never shown in ``repr``).
    :param timeout: Seconds one HTTP request may take (read timeout).
    :param max_retries: Retries after the first attempt, for retryable failures only.
    :param verify: TLS verification: ``True``, ``False`` or the path of a CA bundle.
    :param statuses: The tenant's run status names (success, failure, still going).
    :param auth_method: How the API key is used: ``auto``, ``exchange``, ``bearer-key`` or
        ``raw-key`` (docs/connection.md).
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    verify: bool | str = True
    statuses: RunStatuses = field(default_factory=RunStatuses)
    auth_method: str = DEFAULT_AUTH_METHOD

    @property
    def success_statuses(self) -> tuple[str, ...]:
        """Run statuses that mean success (the ``success_statuses`` extra, or the default)."""
        return self.statuses.success

    @property
    def failure_statuses(self) -> tuple[str, ...]:
        """Run statuses that mean failure (the ``failure_statuses`` extra, or the default)."""
        return self.statuses.failure

    @property
    def active_statuses(self) -> tuple[str, ...]:
        """Run statuses of a run still going (the ``active_statuses`` extra, or the default)."""
        return self.statuses.active

    @property
    def fingerprint(self) -> str:
        """A digest of everything that shapes a client; equal settings share one client.

        Hashing keeps the API key out of registry keys and debug output.
        """
        material = json.dumps(
            [
                self.base_url,
                self.api_key,
                self.timeout,
                self.max_retries,
                self.verify,
                self.auth_method,
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def client_kwargs(self, *, max_retries: int | None = None) -> dict[str, Any]:
        """Keyword arguments for ``ImmutaClient`` / ``AsyncImmutaClient``."""
        retries = self.max_retries if max_retries is None else max_retries
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "max_retries": retries,
            "connect_timeout": min(self.timeout, MAX_CONNECT_TIMEOUT),
            "read_timeout": self.timeout,
            # Room for every attempt to use its whole timeout, plus backoff between them.
            "total_timeout": max(MIN_TOTAL_TIMEOUT, self.timeout * (retries + 1) * 2),
            "verify": self.verify,
            "auth_method": self.auth_method,
        }


def _extra(extras: Mapping[str, Any], name: str) -> Any:
    """An extra by its plain name, else by its ``extra__immuta__`` name; blank means unset."""
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        value = extras.get(key)
        if value is not None and value != "":
            return value
    return None


def _as_bool(conn_id: str, name: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidImmutaConnection(
        f"Airflow connection {conn_id!r}: extra {name!r} must be true or false, got {value!r}."
    )


def _as_number(conn_id: str, name: str, value: Any, default: float, *, minimum: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number >= minimum:  # also rejects NaN
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: extra {name!r} must be a number >= {minimum:g}, "
            f"got {value!r}."
        )
    return number


def _run_statuses(conn_id: str, extras: Mapping[str, Any]) -> RunStatuses:
    try:
        return RunStatuses.create(
            success=parse_status_list(SUCCESS_EXTRA, _extra(extras, SUCCESS_EXTRA)),
            failure=parse_status_list(FAILURE_EXTRA, _extra(extras, FAILURE_EXTRA)),
            active=parse_status_list(ACTIVE_EXTRA, _extra(extras, ACTIVE_EXTRA)),
        )
    except InvalidRunStatuses as exc:
        raise InvalidImmutaConnection(f"Airflow connection {conn_id!r}: {exc}") from None


def _shown(host: str) -> str:
    """The host as an error message may quote it: a ``user:password@`` part becomes ``***@``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)?.*@", r"\1***@", host, flags=re.DOTALL)


def _base_url(conn_id: str, host: str | None, port: int | None, scheme_extra: Any) -> str:
    host = (host or "").strip()
    if not host:
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r} has no host: set it to your Immuta URL, "
            "e.g. https://acme.hosted.immutacloud.com."
        )
    wanted_scheme = str(scheme_extra).strip().lower() if scheme_extra is not None else None
    if wanted_scheme is not None and wanted_scheme not in ("http", "https"):
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: extra 'scheme' must be http or https, "
            f"got {scheme_extra!r}."
        )
    if "://" in host:
        scheme = host.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise InvalidImmutaConnection(
                f"Airflow connection {conn_id!r}: the host {_shown(host)!r} is not an http(s) URL; "
                "set it to your Immuta URL, e.g. https://acme.hosted.immutacloud.com."
            )
        if wanted_scheme is not None and wanted_scheme != scheme:
            raise InvalidImmutaConnection(
                f"Airflow connection {conn_id!r}: the host says {scheme}:// but extra 'scheme' "
                f"says {wanted_scheme}; remove one of them."
            )
        url = host
    else:
        url = f"{wanted_scheme or 'https'}://{host}"
    try:
        parts = urlsplit(url)
        url_port = parts.port
    except ValueError as exc:
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: the host {_shown(host)!r} is not a valid URL ({exc})."
        ) from None
    if not parts.hostname:
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: the host {_shown(host)!r} has no host name; "
            "set it to your Immuta URL, e.g. https://acme.hosted.immutacloud.com."
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: the host must be the bare Immuta URL "
            "(no user, query or #fragment), e.g. https://acme.hosted.immutacloud.com; "
            "put the API key in the password field."
        )
    netloc = parts.netloc
    if port:
        if url_port is not None and url_port != port:
            raise InvalidImmutaConnection(
                f"Airflow connection {conn_id!r}: the host says port {url_port} but the port "
                f"field says {port}; remove one of them."
            )
        if url_port is None:
            netloc = f"{netloc}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path}".rstrip("/")


def settings_from_connection(conn: AirflowConnectionLike) -> ImmutaConnectionSettings:
    """Validate an Airflow connection and return the client settings it describes.

    :raises InvalidImmutaConnection: naming the Airflow connection and what to fix.
    """
    conn_id = conn.conn_id or "<unnamed>"
    extras = conn.extra_dejson or {}
    base_url = _base_url(conn_id, conn.host, conn.port, _extra(extras, "scheme"))
    api_key = (conn.password or "").strip()
    if not api_key:
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r} has no API key: put the Immuta API key in the "
            "password field (labelled 'API key' in the UI)."
        )
    timeout = _as_number(conn_id, "timeout", _extra(extras, "timeout"), DEFAULT_TIMEOUT, minimum=1)
    retries = _as_number(
        conn_id, "max_retries", _extra(extras, "max_retries"), DEFAULT_MAX_RETRIES, minimum=0
    )
    if retries != int(retries):
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: extra 'max_retries' must be a whole number, "
            f"got {retries:g}."
        )
    verify: bool | str = _as_bool(conn_id, "verify_ssl", _extra(extras, "verify_ssl"), True)
    ca_bundle = _extra(extras, "ca_bundle")
    if verify and ca_bundle is not None:
        verify = str(ca_bundle).strip()
    auth_method = _auth_method(conn_id, _extra(extras, "auth_method"))
    return ImmutaConnectionSettings(
        conn_id=conn_id,
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=int(retries),
        verify=verify,
        statuses=_run_statuses(conn_id, extras),
        auth_method=auth_method,
    )


def _auth_method(conn_id: str, value: Any) -> str:
    if value is None:
        return DEFAULT_AUTH_METHOD
    method = str(value).strip().lower().replace("_", "-")
    if method not in AUTH_METHODS:
        raise InvalidImmutaConnection(
            f"Airflow connection {conn_id!r}: extra 'auth_method' must be one of "
            f"{', '.join(AUTH_METHODS)}, got {value!r}."
        )
    return method
