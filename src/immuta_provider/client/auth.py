"""How a client authenticates: the four methods, and the token an exchanged API key becomes.

Immuta documents two ways to use an API key (API-NOTES.md, *Transport*): send the key itself, or
exchange it at ``POST /bim/apikey/authenticate`` for a token sent as ``Authorization: Bearer
<token>``. The methods (the ``auth_method`` of a client, the ``auth_method`` extra of an Airflow
connection):

* ``auto`` (default): exchange; if the tenant has no exchange endpoint (404 or 405), send
  ``Bearer <API key>`` instead, for the rest of the client's life. A 401/403 from the exchange
  means the key is wrong and is raised as such (no other method is tried).
* ``exchange``: always exchange.
* ``bearer-key``: ``Authorization: Bearer <API key>``.
* ``raw-key``: ``Authorization: <API key>`` (no scheme word).

:class:`Credentials` holds the method and the token, free of I/O, so the sync client, the async
client and both async backends share one lifecycle: one token per client, renewed a margin before
the expiry the exchange answer states, and renewed when an ``/api/`` call answers 401 (that call
is then repeated once). The clients wrap the exchange in a lock (``threading.Lock`` /
``asyncio.Lock``) and look again once they hold it, so requests meeting an expired token together
cause one exchange. The token is a secret like the key: never in a ``repr``, a log line or an
error; ``on_secret`` (Airflow's ``mask_secret`` in a hook) is told each new token before it is
used.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import SecretStr

from immuta_provider.client.endpoints import Endpoint
from immuta_provider.client.errors import (
    ImmutaAPIError,
    ImmutaError,
    ImmutaValidationError,
    reworded,
)
from immuta_provider.client.models import ImmutaModel
from immuta_provider.client.vocabulary import AUTH_METHODS, TOKEN_EXCHANGE_PATH

logger = logging.getLogger("immuta_provider.client")

AuthMethod = Literal["auto", "exchange", "bearer-key", "raw-key"]
"""How a client authenticates (see the module docstring)."""
DEFAULT_AUTH_METHOD: AuthMethod = "auto"

EXCHANGE_PATH = TOKEN_EXCHANGE_PATH
# 404: no such route; 405: the route exists for other methods only. Either way, no exchange here.
EXCHANGE_MISSING_STATUSES = frozenset({404, 405})
# Renew this share of a token's lifetime before it ends, at most MAX_RENEWAL_MARGIN seconds:
# enough for a request that starts just before the renewal point to arrive in time.
RENEWAL_MARGIN_FRACTION = 0.1
MAX_RENEWAL_MARGIN = 60.0

EXCHANGE_API_KEY: Endpoint[ImmutaModel] = Endpoint(
    name="exchange_api_key",
    method="POST",
    path=EXCHANGE_PATH,
    model=ImmutaModel,
    # A repeated exchange only mints another token: safe to retry like a GET.
    idempotent=True,
    authenticated=False,
)

DESCRIPTIONS: dict[str, str] = {
    "exchange": "exchanging the API key for a token",
    "bearer-key": "sending the API key as a bearer token",
    "raw-key": "sending the API key itself in the Authorization header",
}
"""How each resolved method reads in a sentence ("authenticated by ...")."""


def validate_auth_method(value: object, name: str = "auth_method") -> AuthMethod:
    """``value`` if it is one of :data:`AUTH_METHODS`, else :class:`ImmutaValidationError`."""
    if not isinstance(value, str) or value not in AUTH_METHODS:
        raise ImmutaValidationError(f"{name} {value!r} must be one of {', '.join(AUTH_METHODS)}")
    method: AuthMethod = value  # type: ignore[assignment]
    return method


class ExchangeAnswerError(Exception):
    """The exchange answered 2xx without a usable token; the text never quotes the body."""


def parse_exchange_answer(content: bytes, now: float | None = None) -> tuple[str, float | None]:
    """The token and its lifetime in seconds (``None``: not stated) from an exchange answer.

    ``expiresIn`` (seconds) wins over ``tokenExpiration`` (ISO 8601), which is read against the
    wall clock ``now``. A lifetime that is not positive (a skewed clock) counts as not stated: the
    token is then renewed when Immuta refuses it.
    """
    try:
        data = json.loads(content)
    except ValueError:
        raise ExchangeAnswerError("a body that is not JSON") from None
    if not isinstance(data, dict):
        raise ExchangeAnswerError(f"a JSON {type(data).__name__}, not an object")
    token = data.get("token")
    if not isinstance(token, str) or not token.strip():
        # Field names only: the values may hold the token under another name.
        fields = ", ".join(sorted(str(name) for name in data)) or "none"
        raise ExchangeAnswerError(f"no 'token' string (fields: {fields})")
    return token.strip(), _lifetime(data, time.time() if now is None else now)


def _lifetime(data: dict[str, Any], now: float) -> float | None:
    expires_in = data.get("expiresIn")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        seconds: float | None = float(expires_in)
    else:
        seconds = None
        expiration = data.get("tokenExpiration")
        if isinstance(expiration, str):
            try:
                when = datetime.fromisoformat(expiration.strip().replace("Z", "+00:00"))
            except ValueError:
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                seconds = when.timestamp() - now
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return None
    if seconds <= 0:
        logger.warning(
            "Immuta's token answer says the token has already expired (clock skew between "
            "Airflow and Immuta?); it is used until Immuta refuses it, then renewed"
        )
        return None
    return seconds


def renewal_margin(lifetime: float) -> float:
    """Seconds before a token's end at which it is renewed."""
    return min(MAX_RENEWAL_MARGIN, lifetime * RENEWAL_MARGIN_FRACTION)


class Credentials:
    """The authentication state of one client: its method and, for ``exchange``, its token.

    I/O-free; the clients do the exchange (under their lock) and report its outcome here.

    Args:
        api_key: the API key.
        method: one of :data:`AUTH_METHODS`.
        on_secret: called with each new token before it is used (e.g. Airflow's
            ``mask_secret``); the async client awaits what it returns, if anything.
        clock: monotonic seconds (tests pass their own).
    """

    __slots__ = (
        "_api_key",
        "_clock",
        "_current",
        "_lock",
        "_retired",
        "_token",
        "exchanges",
        "generation",
        "method",
        "on_secret",
        "resolved",
    )

    def __init__(
        self,
        api_key: SecretStr,
        method: AuthMethod,
        *,
        on_secret: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = api_key
        self._clock = clock
        self.method: AuthMethod = method
        self.on_secret = on_secret
        # What is actually used: "exchange", "bearer-key" or "raw-key"; None until ``auto`` knows.
        self.resolved: str | None = None if method == "auto" else method
        self._token: str | None = None
        self._retired: str | None = None  # the previous token, still redacted from error bodies
        self.generation = 0  # bumped with every new token: tells a stale 401 from a fresh one
        self.exchanges = 0
        # The headers to send, the generation they belong to and when to renew them, replaced in
        # one assignment so that a thread never pairs one token's headers with another token's
        # generation or renewal time. Writers hold ``_lock``: a 401 of the old token must not
        # drop a token stored a moment before (that caused extra exchanges under load).
        self._current: tuple[dict[str, str] | None, int, float] = (None, 0, math.inf)
        self._lock = threading.Lock()
        key = api_key.get_secret_value()
        if self.resolved == "bearer-key":
            self._current = ({"Authorization": f"Bearer {key}"}, 0, math.inf)
        elif self.resolved == "raw-key":
            self._current = ({"Authorization": key}, 0, math.inf)

    def __repr__(self) -> str:
        state = "token held" if self._token is not None else "no token"
        return f"Credentials(method={self.method!r}, resolved={self.resolved!r}, {state})"

    @property
    def uses_token(self) -> bool:
        """Whether requests carry an exchanged token (rather than the key)."""
        return self.resolved != "bearer-key" and self.resolved != "raw-key"

    def headers(self) -> tuple[dict[str, str] | None, int]:
        """The headers to send now and their token generation; ``None`` headers when an
        exchange must happen first."""
        headers, generation, renew_at = self._current
        if headers is not None and self._clock() >= renew_at:
            return None, generation
        return headers, generation

    def stored_headers(self) -> tuple[dict[str, str] | None, int]:
        """The headers of the last exchange (or the key) and their generation, whatever the
        clock says: a request that waited for that exchange uses its token even if the lifetime
        was tiny."""
        headers, generation, _ = self._current
        return headers, generation

    def exchange_body(self) -> dict[str, str]:
        """The exchange's JSON body (the API key; sent only to the exchange endpoint)."""
        return {"apikey": self._api_key.get_secret_value()}

    def store_token(self, token: str, lifetime: float | None) -> None:
        """Use ``token`` from now on; renew it a margin before ``lifetime`` seconds pass."""
        renew_at = (
            math.inf if lifetime is None else self._clock() + lifetime - renewal_margin(lifetime)
        )
        with self._lock:
            if self._token is not None and self._token != token:
                self._retired = self._token
            self._token = token
            self.resolved = "exchange"
            self.generation += 1
            self.exchanges += 1
            self._current = ({"Authorization": f"Bearer {token}"}, self.generation, renew_at)

    def exchange_missing(self) -> bool:
        """The tenant has no exchange endpoint: for ``auto``, fall back to ``Bearer <API key>``
        and return True; for ``exchange``, return False (the caller raises)."""
        if self.method != "auto":
            return False
        logger.info(
            "Immuta has no %s endpoint (404/405): authenticating with the API key as a bearer "
            "token for the life of this client",
            EXCHANGE_PATH,
        )
        with self._lock:
            self.resolved = "bearer-key"
            self._current = (
                {"Authorization": f"Bearer {self._api_key.get_secret_value()}"},
                self.generation,
                math.inf,
            )
        return True

    def rejected(self, generation: int) -> bool:
        """An ``/api/`` call sent with token ``generation`` answered 401. Returns whether to
        exchange again and repeat the call (only for a token; a rejected key is final).

        Only the first rejection of a token drops it: calls that were in flight with it find a
        newer token already in place, so one exchange serves them all.
        """
        if self.resolved != "exchange":
            return False
        with self._lock:
            dropped = generation == self._current[1] and self._current[0] is not None
            if dropped:
                self._current = (None, generation, -math.inf)
        if dropped:
            logger.info("Immuta refused the API token (401); exchanging the API key again")
        return True

    def secrets(self) -> Iterator[str]:
        """Every secret that must never be shown: the key and the tokens it became."""
        yield self._api_key.get_secret_value()
        if self._token is not None:
            yield self._token
        if self._retired is not None:
            yield self._retired

    @property
    def description(self) -> str:
        """How the client authenticates, in words ("exchanging the API key for a token")."""
        if self.resolved is None:
            return "exchanging the API key for a token (or the key itself if Immuta cannot)"
        return DESCRIPTIONS[self.resolved]


def exchange_failed(error: ImmutaError) -> ImmutaError:
    """``error`` from the exchange, reworded to say that the exchange failed and what to do.

    Same class (so ``except ImmutaAuthenticationError`` still catches it) and same attributes,
    plus ``auth_step = "exchange"``.
    """
    status = error.status_code if isinstance(error, ImmutaAPIError) else None
    if status in (401, 403):
        advice = (
            f"Immuta refused the API key at POST {EXCHANGE_PATH} ({status}): the key is wrong, "
            "expired or revoked; use a valid API key"
        )
    elif status in EXCHANGE_MISSING_STATUSES:
        advice = (
            f"Immuta has no POST {EXCHANGE_PATH} endpoint ({status}): set auth_method to 'auto' "
            "(falls back to the key itself), 'bearer-key' or 'raw-key'"
        )
    else:
        advice = f"Exchanging the API key for a token (POST {EXCHANGE_PATH}) failed"
    return reworded(error, f"{advice}. {error}", auth_step="exchange")
