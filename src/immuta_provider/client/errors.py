"""The client's exception hierarchy.

Every error says what failed (its :class:`RequestContext`: endpoint, method, path, attempts), the
HTTP status where there is one, and Immuta's own message. The messages are built here, next to
the classes. No error ever holds request headers, so the API key cannot leak through
an exception's text, its attributes or its pickled form.

```
ImmutaError
├── ImmutaValidationError      bad input, raised before any request
├── ImmutaTransportError       connect/read timeout, dropped connection
│   └── ImmutaTimeoutError
├── ImmutaResponseError        2xx with a body we cannot parse
└── ImmutaAPIError             non-2xx answer
    ├── ImmutaBadRequestError      400
    ├── ImmutaAuthenticationError  401
    ├── ImmutaPermissionError      403
    ├── ImmutaNotFoundError        404
    ├── ImmutaConflictError        409
    ├── ImmutaRateLimitError       429
    └── ImmutaServerError          5xx
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    """Which call an error belongs to, as httpx errors carry their request: picklable, and
    without headers, query string or body (so nothing secret).

    Attributes:
        endpoint: the client method, e.g. ``get_task_run`` ("" when the error is not tied to one).
        method: HTTP method ("" before a request was built).
        path: URL path of the request, or the endpoint's path template when the arguments were
            rejected before one was built.
        attempts: how many attempts were sent, retries included (0: nothing was sent).
    """

    endpoint: str = ""
    method: str = ""
    path: str = ""
    attempts: int = 0

    def __str__(self) -> str:
        call = f"{self.method} {self.path}".strip()
        if self.endpoint and call:
            return f"{self.endpoint} ({call})"
        return self.endpoint or call


NO_REQUEST = RequestContext()


def _rebuild(cls: type[ImmutaError], message: str, state: dict[str, Any]) -> ImmutaError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def _after_attempts(attempts: int) -> str:
    return f" [after {attempts} attempts]" if attempts > 1 else ""


class ImmutaError(Exception):
    """Base class of every error raised by the Immuta client.

    Attributes:
        request: the :class:`RequestContext` of the call that failed; ``endpoint``, ``method``,
            ``path`` and ``attempts`` read from it.
    """

    request: RequestContext = NO_REQUEST

    @property
    def endpoint(self) -> str:
        """The client method whose call failed ("" when not known)."""
        return self.request.endpoint

    @property
    def method(self) -> str:
        """HTTP method of the failed request ("" when none was built)."""
        return self.request.method

    @property
    def path(self) -> str:
        """URL path of the failed request (no query string, no headers)."""
        return self.request.path

    @property
    def attempts(self) -> int:
        """How many attempts were sent, retries included."""
        return self.request.attempts

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments, which the default Exception pickling
        # (cls(*args)) cannot replay; Airflow may pickle exceptions across processes.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def reworded(error: ImmutaError, message: str, **attributes: Any) -> ImmutaError:
    """A copy of ``error`` (same class, same attributes, so ``except`` clauses and pickling
    still work) with another message."""
    copy = type(error).__new__(type(error))
    Exception.__init__(copy, message)
    copy.__dict__.update(error.__dict__)
    copy.__dict__.update(attributes)
    return copy


class ImmutaValidationError(ImmutaError, ValueError):
    """An argument broke one of Immuta's rules; raised before any request is sent.

    ``request`` names the endpoint and its path template when the client rejected a call's
    arguments (attempts 0).
    """


class ImmutaTransportError(ImmutaError):
    """The request did not get an HTTP answer: connection refused, dropped, TLS failure..."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        attempts: int = 1,
        endpoint: str = "",
        request: RequestContext | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request or RequestContext(endpoint, method, path, attempts)

    @classmethod
    def no_answer(
        cls, request: RequestContext, *, base_url: str, what: str, detail: str
    ) -> ImmutaTransportError:
        """An attempt that got no HTTP answer (``what``: the kind of failure)."""
        text = (
            f"Could not get an answer from Immuta at {base_url} for "
            f"{request.method} {request.path}: {what}{': ' + detail if detail else ''}"
        )
        return cls(text + _after_attempts(request.attempts), request=request)


class ImmutaTimeoutError(ImmutaTransportError):
    """A connect, read or total (wall-clock) timeout expired."""

    @classmethod
    def total_timeout_used(
        cls, request: RequestContext, *, total_timeout: float
    ) -> ImmutaTimeoutError:
        """The call's total (wall-clock) timeout ran out between or during attempts."""
        return cls(
            f"Immuta {request.method} {request.path}: total timeout of {total_timeout:g}s used up "
            f"after {request.attempts} attempt(s)",
            request=request,
        )


class ImmutaResponseError(ImmutaError):
    """Immuta answered 2xx but the body is not the JSON the endpoint describes.

    Attributes:
        status_code: the (successful) HTTP status.
        body_excerpt: the start of the body, cleaned up and truncated.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        method: str = "",
        path: str = "",
        status_code: int,
        body_excerpt: str,
        request: RequestContext | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request or RequestContext(endpoint, method, path)
        self.status_code = status_code
        self.body_excerpt = body_excerpt

    @classmethod
    def unexpected_body(
        cls, request: RequestContext, *, status_code: int, problem: str, excerpt: str
    ) -> ImmutaResponseError:
        """A 2xx answer whose body is not what the endpoint describes (``problem`` says how)."""
        return cls(
            f"{request} got {status_code} with {problem}; body starts: {excerpt!r}",
            status_code=status_code,
            body_excerpt=excerpt,
            request=request,
        )

    @classmethod
    def repeated_cursor(cls, request: RequestContext, cursor: str) -> ImmutaResponseError:
        """A page whose next cursor is the one that fetched it: iterating would never end."""
        return cls(
            f"{request}: Immuta returned the page cursor {cursor!r} it was given as the next "
            "one; stopping to avoid an endless loop",
            status_code=200,
            body_excerpt="",
            request=request,
        )


class ImmutaAPIError(ImmutaError):
    """Immuta answered with an error status.

    Attributes:
        status_code: HTTP status, e.g. 409.
        message: Immuta's message (the JSON ``message``), or a readable excerpt of a non-JSON body.
        request_id: the request id header of the response (for Immuta support), if any.
        body_excerpt: the start of the body, cleaned up and truncated.
        retry_after: seconds the server asked us to wait (``Retry-After``), if it said.
    """

    hint: str = ""

    def __init__(
        self,
        *,
        status_code: int,
        message: str,
        method: str = "",
        path: str = "",
        request_id: str | None = None,
        body_excerpt: str = "",
        reason: str = "",
        attempts: int = 1,
        retry_after: float | None = None,
        endpoint: str = "",
        request: RequestContext | None = None,
    ) -> None:
        request = request or RequestContext(endpoint, method, path, attempts)
        text = f"Immuta returned {status_code}{' ' + reason if reason else ''} for "
        text += f"{request.method} {request.path}"
        text += f": {message}" if message else ""
        if self.hint:
            text += f" ({self.hint})"
        text += _after_attempts(request.attempts)
        if request_id:
            text += f" [request id: {request_id}]"
        super().__init__(text)
        self.request = request
        self.status_code = status_code
        self.message = message
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after


class ImmutaBadRequestError(ImmutaAPIError):
    """400: Immuta rejected the payload or a parameter."""


class ImmutaAuthenticationError(ImmutaAPIError):
    """401: the API key is missing, wrong or expired."""

    hint = "check the API key: it is missing, wrong or expired"


class ImmutaPermissionError(ImmutaAPIError):
    """403: the API key is valid but may not do this."""

    hint = "check the API key and its permissions: the key's user may not do this"


class ImmutaNotFoundError(ImmutaAPIError):
    """404: the connection, data object, task or run does not exist."""


class ImmutaConflictError(ImmutaAPIError):
    """409: the resource's state forbids this (Immuta's message says which state is needed)."""


class ImmutaRateLimitError(ImmutaAPIError):
    """429: too many requests; ``retry_after`` holds the seconds Immuta asked us to wait."""


class ImmutaServerError(ImmutaAPIError):
    """5xx: Immuta (or a proxy in front of it) failed."""


_ERROR_BY_STATUS: dict[int, type[ImmutaAPIError]] = {
    400: ImmutaBadRequestError,
    401: ImmutaAuthenticationError,
    403: ImmutaPermissionError,
    404: ImmutaNotFoundError,
    409: ImmutaConflictError,
    429: ImmutaRateLimitError,
}


def api_error_class(status_code: int) -> type[ImmutaAPIError]:
    """The exception class for an HTTP error status."""
    if status_code >= 500:
        return ImmutaServerError
    return _ERROR_BY_STATUS.get(status_code, ImmutaAPIError)
