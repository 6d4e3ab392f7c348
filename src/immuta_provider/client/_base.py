"""Everything the sync and async clients share: configuration, request building from an
:class:`~immuta_provider.client.endpoints.Endpoint`, response parsing, error mapping.

``_sync.py`` and ``_async.py`` only send: they hold the pool (httpx, or aiohttp for the async
client: ``_aiohttp.py``) and the tenacity loop.
"""

from __future__ import annotations

import html
import json
import platform
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import httpx
from pydantic import SecretStr, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from immuta_provider import __version__
from immuta_provider.client.auth import (
    DEFAULT_AUTH_METHOD,
    EXCHANGE_API_KEY,
    EXCHANGE_MISSING_STATUSES,
    EXCHANGE_PATH,
    AuthMethod,
    Credentials,
    ExchangeAnswerError,
    exchange_failed,
    parse_exchange_answer,
    validate_auth_method,
)
from immuta_provider.client.endpoints import Endpoint
from immuta_provider.client.envelopes import (
    EnvelopeMismatch,
    documented_shape,
    read_list_envelope,
    warn_once,
)
from immuta_provider.client.errors import (
    ImmutaAPIError,
    ImmutaError,
    ImmutaResponseError,
    ImmutaTimeoutError,
    ImmutaTransportError,
    ImmutaValidationError,
    RequestContext,
    api_error_class,
)
from immuta_provider.client.models import ImmutaModel
from immuta_provider.client.pagination import Page
from immuta_provider.client.retries import RetryPolicy, is_retryable, parse_retry_after
from immuta_provider.client.validation import (
    validate_api_key,
    validate_base_url,
    validate_non_negative_int,
    validate_non_negative_number,
    validate_page_size,
    validate_positive_number,
)

M = TypeVar("M", bound=ImmutaModel)

USER_AGENT = (
    f"airflow-provider-immuta/{__version__} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)

# Response headers that carry a request/correlation id, most specific first.
REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "request-id", "x-amzn-requestid")

EXCERPT_LENGTH = 200
MESSAGE_LENGTH = 1000

DEFAULT_MAX_RETRIES = 3
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 120.0
DEFAULT_RETRY_AFTER_CAP = 60.0
# A timeout this close to the call's deadline was the deadline's doing (sockets wake early).
DEADLINE_TOLERANCE = 0.05
# One async client serves every trigger of a triggerer (hooks/shared_clients.py). httpcore's pool
# does work in proportion to queued requests x connections on every request and response, and it
# closes idle connections whenever it holds more than its keep-alive limit: with hundreds of
# requests queued, that became a TLS handshake per poll and a backlog that fed itself (the trigger
# fleet in benchmarks/). So the pool keeps every connection it may open, and the async client lets
# no more requests into httpx at once than the pool has connections.
MAX_CONNECTIONS = 10
# How long an idle pooled connection is kept (httpx's default; uvicorn closes idle ones after 5 s).
KEEPALIVE_EXPIRY = 5.0

HttpBackend = Literal["auto", "httpx", "aiohttp"]
"""Which library the async client sends with ("auto": aiohttp when it is installed)."""
HTTP_BACKENDS: tuple[str, ...] = ("auto", "httpx", "aiohttp")


class Answer(Protocol):
    """What the parsing and error mapping read from a response; ``httpx.Response`` is one, the
    aiohttp backend has its own (``_aiohttp.py``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def reason_phrase(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


@dataclass(frozen=True)
class ClientConfig:
    """The validated settings of a client. The API key is a ``SecretStr``: never in ``repr``.

    Build it with :meth:`create`, which checks every value and raises
    :class:`ImmutaValidationError`.
    """

    base_url: str
    api_key: SecretStr = field(repr=False)
    max_retries: int = DEFAULT_MAX_RETRIES
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP
    verify: bool | str = True
    auth_method: AuthMethod = DEFAULT_AUTH_METHOD

    @classmethod
    def create(
        cls,
        base_url: str,
        api_key: str | SecretStr,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
        verify: bool | str = True,
        auth_method: str = DEFAULT_AUTH_METHOD,
    ) -> ClientConfig:
        """Validate the settings and build the config."""
        if not isinstance(verify, bool | str):
            raise ImmutaValidationError(
                f"verify {verify!r} must be True, False or the path of a CA bundle"
            )
        return cls(
            base_url=validate_base_url(base_url),
            api_key=validate_api_key(api_key),
            max_retries=validate_non_negative_int(max_retries, "max_retries"),
            connect_timeout=validate_positive_number(connect_timeout, "connect_timeout"),
            read_timeout=validate_positive_number(read_timeout, "read_timeout"),
            total_timeout=validate_positive_number(total_timeout, "total_timeout"),
            retry_after_cap=validate_non_negative_number(retry_after_cap, "retry_after_cap"),
            verify=verify,
            auth_method=validate_auth_method(auth_method),
        )

    def __repr__(self) -> str:
        return (
            f"ClientConfig(base_url={self.base_url!r}, api_key={self.api_key!r}, "
            f"max_retries={self.max_retries}, connect_timeout={self.connect_timeout}, "
            f"read_timeout={self.read_timeout}, total_timeout={self.total_timeout}, "
            f"retry_after_cap={self.retry_after_cap}, verify={self.verify!r}, "
            f"auth_method={self.auth_method!r})"
        )


class Request:
    """A validated request for one endpoint call (one page, for listing endpoints)."""

    __slots__ = ("endpoint", "json", "method", "page_size", "params", "path")

    def __init__(
        self,
        endpoint: Endpoint[Any],
        path: str,
        params: dict[str, str] | None,
        json: Any,
        page_size: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.method = endpoint.method
        self.path = path
        self.params = params
        self.json = json
        self.page_size = page_size

    def for_page(self, cursor: str | None) -> Request:
        """This request for the page at ``cursor`` (``None``: the first page)."""
        if self.endpoint.page_in == "body":
            page: dict[str, Any] = {}
            if self.page_size is not None:
                page["limit"] = self.page_size
            if cursor is not None:
                page["cursor"] = cursor
            body = dict(self.json or {})
            if page:
                body["page"] = page
            return Request(self.endpoint, self.path, self.params, body, self.page_size)
        params = dict(self.params or {})
        if self.page_size is not None:
            params["page[limit]"] = str(self.page_size)
        if cursor is not None:
            params["page[cursor]"] = cursor
        return Request(self.endpoint, self.path, params or None, self.json, self.page_size)


class Call:
    """The state of one call while it is attempted (and retried)."""

    __slots__ = ("attempts", "auth_generation", "deadline", "method", "path", "request")

    def __init__(self, request: Request, deadline: float) -> None:
        self.request = request
        self.method = request.method
        self.path = request.path
        self.deadline = deadline
        self.attempts = 0
        # The token generation (Credentials.generation) the last attempt was sent with.
        self.auth_generation = -1

    def context(self, attempts: int | None = None) -> RequestContext:
        """What errors of this call carry (no headers, no query string, no body)."""
        sent = self.attempts if attempts is None else attempts
        return RequestContext(self.request.endpoint.name, self.method, self.path, sent)


def prepare_request(endpoint: Endpoint[Any], args: Mapping[str, Any]) -> Request:
    """Validate a call's arguments and build its request; raises before anything is sent."""
    try:
        return _build_request(endpoint, args)
    except ImmutaValidationError as error:
        error.request = RequestContext(endpoint.name, endpoint.method, endpoint.path)
        raise


def _build_request(endpoint: Endpoint[Any], args: Mapping[str, Any]) -> Request:
    path = endpoint.path
    if endpoint.path_params:
        path = path.format_map(
            {p.wire: p.validate(args[p.arg], p.arg) for p in endpoint.path_params}
        )
    params: dict[str, str] | None = None
    for query in endpoint.query:
        value = query.encode(args[query.arg], query.arg)
        if value is not None:
            if params is None:
                params = {}
            params[query.wire] = value
    body: Any = None
    if endpoint.body is not None:
        raw = endpoint.body(args)
        try:
            body = to_jsonable_python(raw)
        except PydanticSerializationError as error:
            raise ImmutaValidationError(
                f"{endpoint.name}: the request body is not JSON-serialisable: {error}"
            ) from None
    page_size = validate_page_size(args["page_size"]) if endpoint.page_in else None
    return Request(endpoint, path, params, body, page_size)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_excerpt(content: bytes, limit: int = EXCERPT_LENGTH) -> str:
    """A readable, single-line excerpt of a body: markup stripped (for HTML pages from proxies),
    whitespace collapsed, cut to ``limit`` characters."""
    text = content.decode("utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
        text = re.sub(r"(?s)<[^>]*>", " ", text)
        text = html.unescape(text)
    return _shorten(text, limit)


def error_message(content: bytes) -> tuple[str, str]:
    """Immuta's message and a body excerpt from an error response body of any shape."""
    if not content.strip():
        return "(empty response body)", ""
    excerpt = clean_excerpt(content)
    try:
        data = json.loads(content)
    except ValueError:
        return excerpt, excerpt
    if isinstance(data, dict):
        message = data.get("message")
        if isinstance(message, list) and message:
            message = "; ".join(str(item) for item in message)
        if not isinstance(message, str) or not message.strip():
            message = data.get("error")
        if isinstance(message, str) and message.strip():
            return _shorten(message, MESSAGE_LENGTH), excerpt
    return excerpt, excerpt


class ClientCore:
    """Shared, I/O-free part of :class:`ImmutaClient` and :class:`AsyncImmutaClient`."""

    def __init__(
        self, config: ClientConfig, *, on_secret: Callable[[str], Any] | None = None
    ) -> None:
        self._config = config
        self._credentials = Credentials(config.api_key, config.auth_method, on_secret=on_secret)
        self._retry_policy = RetryPolicy(
            max_retries=config.max_retries, retry_after_cap=config.retry_after_cap
        )
        self._timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.connect_timeout,
        )
        self._longest_timeout = max(config.connect_timeout, config.read_timeout)

    @property
    def config(self) -> ClientConfig:
        """The validated settings (the API key inside is a ``SecretStr``)."""
        return self._config

    @property
    def base_url(self) -> str:
        """The tenant URL, without a trailing slash."""
        return self._config.base_url

    @property
    def auth_method(self) -> str:
        """The configured authentication method (``auto``, ``exchange``, ``bearer-key``,
        ``raw-key``)."""
        return self._config.auth_method

    @property
    def auth_description(self) -> str:
        """How this client authenticates, in words (for ``auto``: what it found out)."""
        return self._credentials.description

    @property
    def authenticated_by(self) -> str | None:
        """The method in use: ``"exchange"``, ``"bearer-key"`` or ``"raw-key"``; ``None`` while
        ``auto`` has not tried the exchange yet."""
        return self._credentials.resolved

    @property
    def token_exchanges(self) -> int:
        """How many times this client exchanged the API key for a token."""
        return self._credentials.exchanges

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._config.base_url!r}, "
            f"max_retries={self._config.max_retries}, "
            f"auth_method={self._config.auth_method!r})"
        )

    def _verify(self) -> bool | ssl.SSLContext:
        if isinstance(self._config.verify, str):
            # httpx deprecates verify=<path>; a context built from the bundle is the same thing.
            return ssl.create_default_context(cafile=self._config.verify)
        return self._config.verify

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS context httpx would use for ``verify`` (same trust store, same checks)."""
        return httpx.create_ssl_context(verify=self._verify())

    def _headers(self) -> dict[str, str]:
        """The headers of every request. ``Authorization`` is per request (``_authorization``):
        it changes when a token is renewed, and the exchange goes without it."""
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    # --- authentication (the I/O is the clients'; the state is in ``auth.Credentials``) ----

    def _exchange_request(self) -> Request:
        return Request(EXCHANGE_API_KEY, EXCHANGE_PATH, None, self._credentials.exchange_body())

    def _exchange_error(self, error: ImmutaError) -> None:
        """Fall back to the key itself when ``auto`` meets a tenant without the exchange;
        otherwise raise ``error`` reworded to say that the exchange failed."""
        if (
            isinstance(error, ImmutaAPIError)
            and error.status_code in EXCHANGE_MISSING_STATUSES
            and self._credentials.exchange_missing()
        ):
            return
        raise exchange_failed(error) from None

    def _parse_exchange(self, call: Call, response: Answer) -> tuple[str, float | None]:
        """The token and its lifetime from the exchange's 2xx answer."""
        try:
            return parse_exchange_answer(response.content)
        except ExchangeAnswerError as problem:
            # No body excerpt: a malformed answer may still hold the token.
            raise exchange_failed(
                ImmutaResponseError(
                    f"Immuta answered {response.status_code} with {problem}",
                    status_code=response.status_code,
                    body_excerpt="",
                    request=call.context(),
                )
            ) from None

    def _latest_authorization(
        self, call: Call, headers: dict[str, str] | None
    ) -> dict[str, str] | None:
        """The newest token's headers at the moment of sending (a request that waited for a
        free connection may have been given an older one), else ``headers``."""
        if headers is None:
            return None
        latest, generation = self._credentials.stored_headers()
        if latest is None:  # dropped after a 401 and not renewed yet: send what we have
            return headers
        call.auth_generation = generation
        return latest

    def _rejected(self, call: Call) -> bool:
        """An ``/api/`` call answered 401: whether to exchange again and repeat it once."""
        return call.request.endpoint.authenticated and self._credentials.rejected(
            call.auth_generation
        )

    def _http_options(self) -> dict[str, Any]:
        """Keyword arguments for the httpx client (one pool per client, keep-alive)."""
        return {
            "base_url": self._config.base_url,
            "headers": self._headers(),
            "timeout": self._timeout,
            "verify": self._verify(),
            "follow_redirects": False,
            "limits": httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        }

    def _start(self, request: Request) -> Call:
        return Call(request, time.monotonic() + self._config.total_timeout)

    def _may_retry(self, call: Call, error: Exception) -> bool:
        """Whether a failed first attempt goes on to the retry loop."""
        return self._config.max_retries > 0 and is_retryable(
            error, idempotent=call.request.endpoint.idempotent
        )

    def _attempt_budget(self, call: Call) -> float | None:
        """Count the attempt; return the seconds left before the call's deadline when they are
        fewer than the longest timeout (``None``: the configured timeouts fit)."""
        call.attempts += 1
        remaining = call.deadline - time.monotonic()
        if remaining >= self._longest_timeout:
            return None
        if remaining <= 0:
            sent = call.context(attempts=call.attempts - 1)  # this attempt is not sent
            raise ImmutaTimeoutError.total_timeout_used(
                sent, total_timeout=self._config.total_timeout
            )
        return remaining

    def _begin_attempt(self, call: Call) -> httpx.Timeout | Any:
        """Count the attempt and return its timeouts, shortened so the call ends by its deadline."""
        remaining = self._attempt_budget(call)
        if remaining is None:
            return httpx.USE_CLIENT_DEFAULT
        return httpx.Timeout(
            connect=min(self._config.connect_timeout, remaining),
            read=min(self._config.read_timeout, remaining),
            write=min(self._config.read_timeout, remaining),
            pool=min(self._config.connect_timeout, remaining),
        )

    def _redact(self, text: str) -> str:
        """``text`` without the API key or its tokens (a server or proxy may echo them in an
        error body)."""
        for secret in self._credentials.secrets():
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _redacted_body(self, response: Answer) -> bytes:
        # Before cutting the body into an excerpt, so that no part of a secret survives the cut.
        content = response.content
        for secret in self._credentials.secrets():
            encoded = secret.encode()
            if encoded in content:
                content = content.replace(encoded, b"***")
        return content

    def _api_error(self, call: Call, response: Answer) -> ImmutaAPIError:
        """The exception for a non-2xx response (built from the body and headers, no request)."""
        message, excerpt = error_message(self._redacted_body(response))
        headers = response.headers
        request_id = None
        for name in REQUEST_ID_HEADERS:
            request_id = headers.get(name)
            if request_id:
                break
        status = response.status_code
        return api_error_class(status)(
            status_code=status,
            message=self._redact(message),
            request_id=self._redact(request_id) if request_id else None,
            body_excerpt=self._redact(excerpt),
            reason=response.reason_phrase,
            retry_after=parse_retry_after(headers.get("retry-after")),
            request=call.context(),
        )

    def _transport_error(self, call: Call, error: httpx.RequestError) -> ImmutaTransportError:
        """The exception for an attempt that got no HTTP answer."""
        kind = ImmutaTimeoutError if isinstance(error, httpx.TimeoutException) else None
        descriptions: dict[type[Exception], str] = {
            httpx.ConnectTimeout: f"connect timeout of {self._config.connect_timeout:g}s",
            httpx.ReadTimeout: f"read timeout of {self._config.read_timeout:g}s",
            httpx.WriteTimeout: f"write timeout of {self._config.read_timeout:g}s",
            httpx.PoolTimeout: "no free connection in the pool in time",
        }
        what = descriptions.get(type(error), type(error).__name__)
        detail = str(error)
        if kind is not None and time.monotonic() >= call.deadline - DEADLINE_TOLERANCE:
            # Cut at the call's deadline (not by one read taking too long): say which limit.
            what = f"total timeout of {self._config.total_timeout:g}s used up"
            detail = ""
        return (kind or ImmutaTransportError).no_answer(
            call.context(),
            base_url=self._config.base_url,
            what=what,
            detail=detail,
        )

    def _response_error(self, call: Call, response: Answer, problem: str) -> ImmutaResponseError:
        return ImmutaResponseError.unexpected_body(
            call.context(),
            status_code=response.status_code,
            problem=problem,
            excerpt=self._redact(clean_excerpt(self._redacted_body(response))),
        )

    def _invalid_body(
        self, call: Call, response: Answer, error: ValidationError
    ) -> ImmutaResponseError:
        details = error.errors(include_url=False, include_input=False)
        if any(detail["type"] == "json_invalid" for detail in details):
            return self._response_error(call, response, "a body that is not valid JSON")
        model = call.request.endpoint.model.__name__
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc']) or '<body>'}: {detail['msg']}"
            for detail in details[:3]
        )
        more = f" (+{len(details) - 3} more)" if len(details) > 3 else ""
        return self._response_error(
            call, response, f"a body that does not match {model}: {problems}{more}"
        )

    def _parse(self, endpoint: Endpoint[M], call: Call, response: Answer) -> M:
        """The endpoint's model from a 2xx response."""
        try:
            return endpoint.model.model_validate_json(response.content)
        except ValidationError as error:
            raise self._invalid_body(call, response, error) from None

    def _parse_page(self, endpoint: Endpoint[M], call: Call, response: Answer) -> Page[M]:
        """One page of items from a 2xx list response, read by the envelope rules of
        ``envelopes.py`` (documented: ``{"<items>": [...], "page": {"nextCursor": ...}}``)."""
        key = endpoint.items_key or ""
        try:
            # The fast path: the documented envelope, parsed and validated in one pass. Anything
            # else (another envelope, an invalid item...) goes through the step-by-step reading
            # below, which applies the envelope rules and says what was wrong.
            fast = endpoint.page_adapter.validate_json(response.content)
        except ValidationError:
            pass
        else:
            page = fast.page
            if isinstance(page, dict) and "nextCursor" in page:
                cursor = page["nextCursor"]
            elif "nextCursor" in fast.model_fields_set:  # a top-level cursor: not documented
                cursor = False
            else:
                cursor = None
            if cursor is None or isinstance(cursor, str):
                return Page(items=getattr(fast, key), next_cursor=cursor or None)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise self._response_error(call, response, "a body that is not valid JSON") from None
        try:
            envelope = read_list_envelope(data, key)
        except EnvelopeMismatch as mismatch:
            raise self._envelope_error(call, response, mismatch) from None
        warn_once(endpoint.name, envelope)
        try:
            items = endpoint.items_adapter.validate_python(envelope.items)
        except ValidationError as error:
            raise self._invalid_body(call, response, error) from None
        return Page(items=items, next_cursor=envelope.next_cursor)

    def _envelope_error(
        self, call: Call, response: Answer, mismatch: EnvelopeMismatch
    ) -> ImmutaResponseError:
        # Keys only: a list answer may hold anything, and its values stay out of logs.
        endpoint = call.request.endpoint
        seen = ", ".join(repr(key) for key in mismatch.keys) if mismatch.keys else "none"
        return ImmutaResponseError(
            f"{endpoint.name} ({call.method} {call.path}) got {response.status_code} with a list "
            f"envelope the client cannot read: {mismatch.problem}; top-level keys seen: {seen}. "
            f"Expected {documented_shape(endpoint.items_key or '')} or one list-valued key; "
            "run immuta-doctor against this tenant and report its output",
            endpoint=endpoint.name,
            method=call.method,
            path=call.path,
            status_code=response.status_code,
            body_excerpt="",
        )
