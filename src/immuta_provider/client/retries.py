"""The retry policy: what may be retried, how long to wait, when to give up.

Only safe failures are retried (API-NOTES.md):

* idempotent calls (GET, POST ``_validate`` / ``_cancel`` / ``_search``): HTTP 429, 502, 503, 504,
  connect errors, timeouts and dropped connections;
* every other call (create, PATCH, DELETE, ``_activate``...): only failures that prove the request
  was not acted on: it never left this process (connect error, connect timeout, no free pooled
  connection), or the server refused it with 429 (rate limited: the server says it did not process
  it, and ``Retry-After`` says when to come back). Any other failure after sending is not retried,
  because a retried create could start a second task.

Waits are exponential with jitter, or what ``Retry-After`` asks (capped). The whole call, waits
included, is bounded by the total timeout (the call's deadline). The tenacity objects are built once
per client from the parts here, so both clients share one policy.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from immuta_provider.client.errors import ImmutaAPIError

logger = logging.getLogger("immuta_provider.client")

RETRYABLE_STATUS_CODES: frozenset[int] = frozenset({429, 502, 503, 504})
"""HTTP statuses worth another try on idempotent calls."""
NOT_PROCESSED_STATUS_CODES: frozenset[int] = frozenset({429})
"""HTTP statuses that say the server refused the request without acting on it: worth another
try on any call, a task-creating POST included."""

# The request provably never reached the server: safe to retry even a task-creating POST.
NEVER_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Transient transport failures after which an idempotent request may simply be sent again.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def is_retryable(error: BaseException, *, idempotent: bool) -> bool:
    """Whether a failed attempt may be repeated."""
    if getattr(error, "auth_step", None) == "exchange":
        # The key exchange before this attempt failed after retries of its own.
        return False
    if isinstance(error, NEVER_SENT_ERRORS):
        return True
    if isinstance(error, ImmutaAPIError) and error.status_code in NOT_PROCESSED_STATUS_CODES:
        return True
    if not idempotent:
        return False
    if isinstance(error, ImmutaAPIError):
        return error.status_code in RETRYABLE_STATUS_CODES
    return isinstance(error, TRANSIENT_ERRORS)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay in seconds or an HTTP date).

    Returns ``None`` when the header is absent or unreadable; never a negative number.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry settings of one client.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        retry_after_cap: the longest ``Retry-After`` (seconds) we honour; longer asks wait this.
        backoff_initial, backoff_max, backoff_jitter: exponential backoff (seconds) when the
            server gives no ``Retry-After``: ``min(initial * 2**(n-1), max) + uniform(0, jitter)``.
    """

    max_retries: int = 3
    retry_after_cap: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    backoff_jitter: float = 0.5


class WaitRetryAfterOrBackoff(wait_base):
    """Wait what ``Retry-After`` asked (capped), else exponential backoff with jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._cap = policy.retry_after_cap
        # Composed from parts every supported tenacity (>= 8.2) has.
        self._backoff = wait_exponential(
            multiplier=policy.backoff_initial, max=policy.backoff_max
        ) + wait_random(0, policy.backoff_jitter)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, ImmutaAPIError) and error.retry_after is not None:
            return min(error.retry_after, self._cap)
        return self._backoff(retry_state)


class StopAtDeadline(stop_base):
    """Stop when the next wait would end past the call's deadline (the total timeout).

    The deadline is the call's own (``retry_state.args[0].deadline``, monotonic seconds), set
    when the call started, so the first attempt's time counts too.
    """

    def __call__(self, retry_state: RetryCallState) -> bool:
        deadline: float = retry_state.args[0].deadline
        return time.monotonic() + retry_state.upcoming_sleep >= deadline


def describe_failure(error: BaseException | None) -> str:
    """A short, key-free description of a failed attempt for logs."""
    if isinstance(error, ImmutaAPIError):
        text = f"HTTP {error.status_code}"
        if error.retry_after is not None:
            text += f" (Retry-After {error.retry_after:g}s)"
        return text
    if error is None:
        return "no outcome"
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def _log_retry(max_retries: int) -> Any:
    def log_before_sleep(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        # args[0] is the call's state (see _base.Call): method and path, never headers.
        call = retry_state.args[0]
        logger.warning(
            "Immuta %s %s failed with %s on attempt %d; retry %d of %d in %.2fs",
            call.method,
            call.path,
            describe_failure(error),
            retry_state.attempt_number,
            retry_state.attempt_number,
            max_retries,
            retry_state.upcoming_sleep,
        )

    return log_before_sleep


def retrying_options(policy: RetryPolicy, *, idempotent: bool) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` (all but ``sleep``)."""
    return {
        "stop": stop_after_attempt(policy.max_retries + 1) | StopAtDeadline(),
        "wait": WaitRetryAfterOrBackoff(policy),
        "retry": retry_if_exception(lambda error: is_retryable(error, idempotent=idempotent)),
        "before_sleep": _log_retry(policy.max_retries),
        "reraise": True,
    }
