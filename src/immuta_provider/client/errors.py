"""The client's exception hierarchy.

Every error says what failed (endpoint / method and path), the HTTP status where there is one,
and Immuta's own message. No error ever holds request headers, so the API key cannot leak through
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

from typing import Any


def _rebuild(cls: type[ImmutaError], message: str, state: dict[str, Any]) -> ImmutaError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ImmutaError(Exception):
    """Base class of every error raised by the Immuta client."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments, which the default Exception pickling
        # (cls(*args)) cannot replay; Airflow may pickle exceptions across processes.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


class ImmutaValidationError(ImmutaError, ValueError):
    """An argument broke one of Immuta's rules; raised before any request is sent."""


class ImmutaTransportError(ImmutaError):
    """The request did not get an HTTP answer: connection refused, dropped, TLS failure...

    Attributes:
        method: HTTP method of the request.
        path: URL path of the request (no query, no headers).
        attempts: how many attempts were made, retries included.
    """

    def __init__(self, message: str, *, method: str, path: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.attempts = attempts


class ImmutaTimeoutError(ImmutaTransportError):
    """A connect, read or total (wall-clock) timeout expired."""


class ImmutaResponseError(ImmutaError):
    """Immuta answered 2xx but the body is not the JSON the endpoint describes.

    Attributes:
        endpoint: the client method name, e.g. ``get_task_run``.
        method, path: the request that got this answer.
        status_code: the (successful) HTTP status.
        body_excerpt: the start of the body, cleaned up and truncated.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        method: str,
        path: str,
        status_code: int,
        body_excerpt: str,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.method = method
        self.path = path
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class ImmutaAPIError(ImmutaError):
    """Immuta answered with an error status.

    Attributes:
        status_code: HTTP status, e.g. 409.
        method: HTTP method of the request.
        path: URL path of the request (no query string, no headers).
        message: Immuta's message (the JSON ``message``), or a readable excerpt of a non-JSON body.
        request_id: the request id header of the response (for Immuta support), if any.
        body_excerpt: the start of the body, cleaned up and truncated.
        attempts: how many attempts were made, retries included.
        retry_after: seconds the server asked us to wait (``Retry-After``), if it said.
    """

    hint: str = ""

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        path: str,
        message: str,
        request_id: str | None = None,
        body_excerpt: str = "",
        reason: str = "",
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        text = f"Immuta returned {status_code}{' ' + reason if reason else ''} for {method} {path}"
        text += f": {message}" if message else ""
        if self.hint:
            text += f" ({self.hint})"
        if attempts > 1:
            text += f" [after {attempts} attempts]"
        if request_id:
            text += f" [request id: {request_id}]"
        super().__init__(text)
        self.status_code = status_code
        self.method = method
        self.path = path
        self.message = message
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        self.attempts = attempts
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
