"""Authentication as Immuta documents it: API keys, and tokens exchanged for them.

``POST /bim/apikey/authenticate`` takes the key (JSON ``{"apikey": ...}``, a form body, or the
``Authorization`` header) and answers ``{"token", "tokenExpiration"}``; a token lives ``token_ttl``
seconds of the emulator's clock (so ``/_emulator/clock/advance`` expires tokens too). What ``/api/``
accepts is the ``auth`` mode:

* ``any`` (default): ``Bearer <API key>``, the raw key, or ``Bearer <token>``;
* ``exchange-only``: tokens only (the key itself gets 401, as the reference's JWT bearer suggests);
* ``key-only``: the key only; the exchange endpoint does not exist (404).

Counters tell tests how many exchanges happened and why each 401 was given.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

AUTH_MODES: tuple[str, ...] = ("any", "exchange-only", "key-only")
DEFAULT_AUTH_MODE = "any"
DEFAULT_TOKEN_TTL = 3600.0
EXCHANGE_PATH = "/bim/apikey/authenticate"

# Why a request got 401 (the keys of the ``unauthorized`` counter).
MISSING = "missing_header"
INVALID = "invalid_credentials"
EXPIRED = "expired_token"
KEY_REFUSED = "key_not_accepted"  # exchange-only: the key itself, not a token

UNAUTHORIZED_MESSAGES = {
    MISSING: (
        "Missing credentials: send 'Authorization: Bearer <token>' with a token from "
        f"POST {EXCHANGE_PATH}, or the API key."
    ),
    INVALID: "Invalid API key or token.",
    EXPIRED: f"The token has expired: exchange the API key again at POST {EXCHANGE_PATH}.",
    KEY_REFUSED: (
        f"This tenant accepts tokens only: exchange the API key at POST {EXCHANGE_PATH} and send "
        "'Authorization: Bearer <token>'."
    ),
}


class Authenticator:
    """The API keys of one emulator, the tokens it issued, and the auth counters.

    Args:
        api_keys: the accepted keys; the n-th key's principal is ``api-key-<n>``.
        mode: one of :data:`AUTH_MODES`.
        token_ttl: seconds a token lives.
        clock: the emulator's clock (wall seconds, advanced by the admin API).
    """

    def __init__(
        self,
        api_keys: Iterable[str],
        *,
        mode: str = DEFAULT_AUTH_MODE,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        clock: Callable[[], float],
    ) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth mode {mode!r} must be one of {', '.join(AUTH_MODES)}")
        if not token_ttl > 0:
            raise ValueError(f"token TTL {token_ttl!r} must be a positive number of seconds")
        # Keys as bytes, compared in constant time; principals name who created a task.
        self._keys = [(key.encode(), f"api-key-{n}") for n, key in enumerate(api_keys, 1)]
        self.mode = mode
        self.token_ttl = token_ttl
        self._clock = clock
        self._tokens: dict[bytes, tuple[str, float]] = {}
        self.issued: list[str] = []  # every token ever issued (the secret canary scans for them)
        self.exchanges = 0
        self.exchanges_refused = 0
        self.unauthorized: Counter[str] = Counter()

    @property
    def exchange_enabled(self) -> bool:
        """Whether ``POST /bim/apikey/authenticate`` exists."""
        return self.mode != "key-only"

    def _principal_of_key(self, key: bytes) -> str | None:
        principal = None
        for known, who in self._keys:
            if hmac.compare_digest(known, key):
                principal = who
        return principal

    def authenticate(self, authorization: bytes | None) -> tuple[str | None, str | None]:
        """``(principal, None)`` for an accepted ``Authorization`` value, else ``(None, cause)``
        (the cause is also counted)."""
        principal, cause = self._check(authorization)
        if cause is not None:
            self.unauthorized[cause] += 1
        return principal, cause

    def _check(self, authorization: bytes | None) -> tuple[str | None, str | None]:
        if not authorization or not authorization.strip():
            return None, MISSING
        scheme, _, rest = authorization.partition(b" ")
        credential = rest.strip() if scheme.lower() == b"bearer" else authorization.strip()
        issued = self._tokens.get(credential)
        if issued is not None:
            principal, expires_at = issued
            if self._clock() >= expires_at:
                return None, EXPIRED
            return principal, None
        principal_of_key = self._principal_of_key(credential)
        if principal_of_key is None:
            return None, INVALID
        if self.mode == "exchange-only":
            return None, KEY_REFUSED
        return principal_of_key, None

    def exchange(self, body: bytes, content_type: str, authorization: bytes | None) -> Any:
        """Answer an exchange: ``(200, {"token", "tokenExpiration"})`` or ``(401, message)``."""
        key = _key_from(body, content_type, authorization)
        principal = self._principal_of_key(key) if key else None
        if principal is None:
            self.exchanges_refused += 1
            message = (
                "Invalid API key." if key else 'No API key: send JSON {"apikey": "<API key>"}.'
            )
            return 401, message
        token = f"emu-token-{secrets.token_hex(24)}"
        expires_at = self._clock() + self.token_ttl
        self._tokens[token.encode()] = (principal, expires_at)
        self.issued.append(token)
        self.exchanges += 1
        expiration = datetime.fromtimestamp(expires_at, timezone.utc).isoformat(
            timespec="milliseconds"
        )
        return 200, {"token": token, "tokenExpiration": expiration.replace("+00:00", "Z")}

    def revoke_all(self) -> int:
        """Forget every token (as a server restart or a revocation would); returns how many."""
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def clear_counters(self) -> None:
        """Start counting from zero (tokens stay valid)."""
        self.exchanges = 0
        self.exchanges_refused = 0
        self.unauthorized.clear()

    def counters(self) -> dict[str, Any]:
        """The auth counters, as ``/_emulator/counters`` shows them under ``auth``."""
        return {
            "mode": self.mode,
            "token_ttl": self.token_ttl,
            "exchanges": self.exchanges,
            "exchanges_refused": self.exchanges_refused,
            "unauthorized": dict(self.unauthorized),
        }


def _key_from(body: bytes, content_type: str, authorization: bytes | None) -> bytes | None:
    """The API key of an exchange request: JSON body, form body, else the header."""
    media = content_type.split(";", 1)[0].strip().lower()
    key: object = None
    if body.strip():
        if media == "application/x-www-form-urlencoded":
            values = parse_qs(body.decode("utf-8", errors="replace")).get("apikey")
            key = values[0] if values else None
        else:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                key = data.get("apikey")
    if isinstance(key, str) and key.strip():
        return key.strip().encode()
    if authorization and authorization.strip():
        scheme, _, rest = authorization.partition(b" ")
        return rest.strip() if scheme.lower() in (b"bearer", b"apikey") else authorization.strip()
    return None
