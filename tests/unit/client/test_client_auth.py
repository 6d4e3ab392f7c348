"""Authentication in both clients (transport-level fakes; real HTTP in test_client_auth_live.py):
the four methods, the token's lifecycle (expiry, renewal on 401, single flight), the exchange's
retries and errors, and the token kept secret."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
import time
from typing import Any

import httpx
import pytest
from tests.unit.client.conftest import API_KEY, BASE_URL, Api

from immuta_provider.client import (
    AsyncImmutaClient,
    ImmutaAuthenticationError,
    ImmutaClient,
    ImmutaNotFoundError,
    ImmutaResponseError,
    ImmutaServerError,
    ImmutaValidationError,
)
from immuta_provider.client.auth import Credentials, parse_exchange_answer, renewal_margin

EXCHANGE = "/bim/apikey/authenticate"
CONNECTION = {"connectionKey": "snowflake-prod", "technology": "Snowflake", "state": "ACTIVE"}


class Tenant:
    """A fake Immuta: exchanges the key for numbered tokens and checks ``Authorization``.

    ``exchange_status``: what the exchange answers instead of a token (404, 503, ...), for the
    first ``exchange_failures`` exchanges (all of them when None). ``accept``: which credentials
    ``/api/`` takes ("token", "bearer-key", "raw-key"). ``expires_in``: stated token lifetime.
    """

    def __init__(
        self,
        *,
        accept: str = "token",
        expires_in: float | None = None,
        exchange_status: int | None = None,
        exchange_failures: int | None = None,
        echo: bool = False,
    ) -> None:
        self.accept = accept
        self.expires_in = expires_in
        self.exchange_status = exchange_status
        self.exchange_failures = exchange_failures
        self.echo = echo
        self.valid: set[str] = set()
        self.issued: list[str] = []
        self.exchange_bodies: list[Any] = []
        self.api_auth: list[str | None] = []
        self.lock = threading.Lock()

    @property
    def exchanges(self) -> int:
        return len(self.exchange_bodies)

    def revoke(self) -> None:
        self.valid.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            if request.url.path == EXCHANGE:
                return self._exchange(request)
            return self._api(request)

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers  # the key travels in the body only
        self.exchange_bodies.append(json.loads(request.content))
        failing = self.exchange_failures is None or self.exchanges <= self.exchange_failures
        if self.exchange_status is not None and failing:
            return httpx.Response(
                self.exchange_status, json={"statusCode": self.exchange_status, "message": "no"}
            )
        if self.exchange_bodies[-1] != {"apikey": API_KEY}:
            return httpx.Response(401, json={"statusCode": 401, "message": "Invalid API key."})
        token = f"tok-{len(self.issued) + 1}-{'x' * 20}"
        self.issued.append(token)
        self.valid.add(token)
        body: dict[str, Any] = {"token": token}
        if self.expires_in is not None:
            body["expiresIn"] = self.expires_in
        return httpx.Response(200, json=body)

    def _api(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("authorization")
        self.api_auth.append(header)
        accepted = {
            "token": {f"Bearer {token}" for token in self.valid},
            "bearer-key": {f"Bearer {API_KEY}"},
            "raw-key": {API_KEY},
        }[self.accept]
        if header not in accepted:
            message = f"Rejected {header}" if self.echo else "Unauthorized"
            return httpx.Response(401, json={"statusCode": 401, "message": message})
        return httpx.Response(200, json=CONNECTION)


def make(kind: str, tenant: Tenant, **options: Any) -> Api:
    options.setdefault("auth_method", "auto")
    return Api(kind, tenant, **options)


@pytest.fixture
async def clients() -> Any:
    made: list[Api] = []

    def factory(kind: str, tenant: Tenant, **options: Any) -> Api:
        api = make(kind, tenant, **options)
        made.append(api)
        return api

    yield factory
    for api in made:
        await api.close()


@pytest.mark.parametrize(
    ("method", "accept", "header"),
    [
        ("auto", "token", "Bearer tok-1-xxxxxxxxxxxxxxxxxxxx"),
        ("exchange", "token", "Bearer tok-1-xxxxxxxxxxxxxxxxxxxx"),
        ("bearer-key", "bearer-key", f"Bearer {API_KEY}"),
        ("raw-key", "raw-key", API_KEY),
    ],
)
async def test_each_method_sends_its_header(
    clients: Any, client_kind: str, method: str, accept: str, header: str
) -> None:
    tenant = Tenant(accept=accept)
    api = clients(client_kind, tenant, auth_method=method)
    for _ in range(3):
        await api.call("get_connection", "snowflake-prod")
    assert tenant.api_auth == [header] * 3
    assert tenant.exchanges == (1 if method in ("auto", "exchange") else 0)
    assert api.client.authenticated_by == ("exchange" if accept == "token" else method)


@pytest.mark.parametrize("missing", [404, 405])
async def test_auto_falls_back_to_the_key_when_there_is_no_exchange_and_remembers(
    clients: Any, client_kind: str, missing: int
) -> None:
    tenant = Tenant(accept="bearer-key", exchange_status=missing)
    api = clients(client_kind, tenant)
    for _ in range(3):
        await api.call("get_connection", "snowflake-prod")
    assert tenant.exchanges == 1
    assert tenant.api_auth == [f"Bearer {API_KEY}"] * 3
    assert api.client.authenticated_by == "bearer-key"
    assert api.client.auth_description == "sending the API key as a bearer token"


@pytest.mark.parametrize("refused", [401, 403])
async def test_auto_stops_when_the_exchange_refuses_the_key(
    clients: Any, client_kind: str, refused: int
) -> None:
    tenant = Tenant(accept="bearer-key", exchange_status=refused)
    api = clients(client_kind, tenant)
    with pytest.raises(ImmutaAuthenticationError if refused == 401 else Exception) as caught:
        await api.call("get_connection", "snowflake-prod")
    text = str(caught.value)
    assert f"Immuta refused the API key at POST {EXCHANGE} ({refused})" in text
    assert caught.value.auth_step == "exchange"  # type: ignore[attr-defined]
    assert caught.value.path == EXCHANGE  # type: ignore[attr-defined]
    assert tenant.api_auth == []  # no other method was tried
    assert tenant.exchanges == 1  # and a refusal is not retried


async def test_pinned_exchange_without_an_exchange_endpoint_says_what_to_set(
    clients: Any, client_kind: str
) -> None:
    tenant = Tenant(accept="bearer-key", exchange_status=404)
    api = clients(client_kind, tenant, auth_method="exchange")
    with pytest.raises(ImmutaNotFoundError, match="set auth_method to 'auto'"):
        await api.call("get_connection", "snowflake-prod")
    assert tenant.api_auth == []


async def test_a_refused_token_is_renewed_and_the_call_repeated_once(
    clients: Any, client_kind: str
) -> None:
    tenant = Tenant()
    api = clients(client_kind, tenant)
    await api.call("get_connection", "snowflake-prod")
    tenant.revoke()  # e.g. Immuta restarted, or the token expired earlier than stated
    await api.call("activate_connection", "snowflake-prod")  # not idempotent: repeated after 401
    assert tenant.exchanges == 2
    assert tenant.api_auth[1:] == [
        "Bearer tok-1-xxxxxxxxxxxxxxxxxxxx",
        "Bearer tok-2-xxxxxxxxxxxxxxxxxxxx",
    ]


async def test_a_second_401_is_a_real_401(clients: Any, client_kind: str) -> None:
    tenant = Tenant(accept="bearer-key")  # the tenant issues tokens but accepts none
    api = clients(client_kind, tenant, auth_method="exchange")
    with pytest.raises(ImmutaAuthenticationError) as caught:
        await api.call("get_connection", "snowflake-prod")
    assert "Immuta returned 401" in str(caught.value)
    assert tenant.exchanges == 2  # the first token, then one renewal
    assert len(tenant.api_auth) == 2  # the call and its one repeat


async def test_a_refused_key_is_not_repeated(clients: Any, client_kind: str) -> None:
    tenant = Tenant(accept="raw-key")
    api = clients(client_kind, tenant, auth_method="bearer-key")
    with pytest.raises(ImmutaAuthenticationError):
        await api.call("get_connection", "snowflake-prod")
    assert len(tenant.api_auth) == 1


async def test_token_is_renewed_before_the_stated_expiry(clients: Any, client_kind: str) -> None:
    tenant = Tenant(expires_in=0.3)
    api = clients(client_kind, tenant)
    await api.call("get_connection", "snowflake-prod")
    await api.call("get_connection", "snowflake-prod")
    assert tenant.exchanges == 1
    # Past the renewal point (lifetime minus the margin), before the end.
    await asyncio.sleep(0.3 - renewal_margin(0.3) + 0.01)
    await api.call("get_connection", "snowflake-prod")
    assert tenant.exchanges == 2
    assert tenant.api_auth[-1] == "Bearer tok-2-xxxxxxxxxxxxxxxxxxxx"
    assert api.client.token_exchanges == 2


async def test_the_exchange_is_retried_on_transient_failures(
    clients: Any, client_kind: str
) -> None:
    tenant = Tenant(exchange_status=503, exchange_failures=2)
    api = clients(client_kind, tenant)
    await api.call("get_connection", "snowflake-prod")
    assert tenant.exchanges == 3
    assert len(api.sleeps) == 2


async def test_an_exchange_that_keeps_failing_says_so_and_is_not_retried_again(
    clients: Any, client_kind: str
) -> None:
    tenant = Tenant(exchange_status=503)
    api = clients(client_kind, tenant, max_retries=2)
    with pytest.raises(ImmutaServerError) as caught:
        await api.call("get_connection", "snowflake-prod")
    assert str(caught.value).startswith(
        f"Exchanging the API key for a token (POST {EXCHANGE}) failed. Immuta returned 503"
    )
    assert "[after 3 attempts]" in str(caught.value)
    # The exchange's own retries only: the call around it does not retry the whole exchange.
    assert tenant.exchanges == 3
    assert tenant.api_auth == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>login</html>", "a body that is not JSON"),
        (b'["tok"]', "a JSON list"),
        (b'{"jwt": "secret-looking-value", "user": 1}', "no 'token' string (fields: jwt, user)"),
    ],
)
async def test_an_exchange_answer_without_a_token_names_fields_not_values(
    client_kind: str, body: bytes, problem: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    api = Api(client_kind, handler, auth_method="exchange")
    try:
        with pytest.raises(ImmutaResponseError) as caught:
            await api.call("get_connection", "snowflake-prod")
    finally:
        await api.close()
    assert problem in str(caught.value)
    assert "secret-looking-value" not in str(caught.value) + repr(vars(caught.value))


async def test_token_stays_secret_in_errors_reprs_and_pickles(
    clients: Any, client_kind: str
) -> None:
    masked: list[str] = []
    tenant = Tenant(accept="bearer-key", echo=True)  # the 401 body echoes the token sent
    api = clients(client_kind, tenant, auth_method="exchange", on_secret=masked.append)
    with pytest.raises(ImmutaAuthenticationError) as caught:
        await api.call("get_connection", "snowflake-prod")
    assert masked == tenant.issued and len(masked) == 2
    texts = [
        str(caught.value),
        repr(caught.value),
        repr(vars(caught.value)),
        pickle.dumps(caught.value).decode("latin-1"),
        repr(api.client),
        repr(api.client.config),
        repr(api.client._credentials),
    ]
    assert "Rejected Bearer ***" in texts[0]
    for token in tenant.issued:
        assert all(token not in text for text in texts)


async def test_an_async_secret_callback_is_awaited_before_the_token_is_used() -> None:
    tenant = Tenant()
    seen: list[tuple[str, int]] = []

    async def mask(token: str) -> None:
        await asyncio.sleep(0)
        seen.append((token, len(tenant.api_auth)))

    transport = httpx.MockTransport(tenant)
    async with AsyncImmutaClient(
        BASE_URL, API_KEY, transport=transport, on_secret=mask, auth_method="auto"
    ) as client:
        await client.get_connection("snowflake-prod")
    assert seen == [(tenant.issued[0], 0)]


async def test_concurrent_requests_meeting_an_expired_token_cause_one_exchange() -> None:
    tenant = Tenant(expires_in=0.2)
    transport = httpx.MockTransport(tenant)
    async with AsyncImmutaClient(BASE_URL, API_KEY, transport=transport) as client:
        await client.get_connection("snowflake-prod")
        tenant.expires_in = 60  # the next token outlives the test
        await asyncio.sleep(0.25)
        await asyncio.gather(*(client.get_connection("snowflake-prod") for _ in range(100)))
        assert tenant.exchanges == 2
        tenant.revoke()  # now every request in flight meets a 401
        await asyncio.gather(*(client.get_connection("snowflake-prod") for _ in range(100)))
        assert tenant.exchanges == 3


def test_threads_meeting_an_expired_token_cause_one_exchange() -> None:
    tenant = Tenant(expires_in=0.2)
    with ImmutaClient(BASE_URL, API_KEY, transport=httpx.MockTransport(tenant)) as client:
        client.get_connection("snowflake-prod")
        tenant.expires_in = 60  # the next token outlives the test
        time.sleep(0.25)
        start = threading.Barrier(20)

        def poll() -> None:
            start.wait()
            client.get_connection("snowflake-prod")

        threads = [threading.Thread(target=poll) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert tenant.exchanges == 2
        tenant.revoke()
        threads = [threading.Thread(target=poll) for _ in range(20)]
        start.reset()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert tenant.exchanges == 3
        # Calls that met the revoked token were repeated once each, and only those.
        refused = [header for header in tenant.api_auth[21:] if "tok-2" in (header or "")]
        assert len(tenant.api_auth) == 21 + len(refused) + 20


def test_exchange_answer_lifetimes() -> None:
    now = 1_800_000_000.0
    assert parse_exchange_answer(b'{"token": "t", "expiresIn": 90}', now) == ("t", 90.0)
    assert parse_exchange_answer(
        b'{"token": "t", "tokenExpiration": "2027-01-15T08:01:40.000Z"}', now
    ) == ("t", 100.0)
    # No offset means UTC; an expiry in the past (skew) or unreadable means "not stated".
    assert parse_exchange_answer(
        b'{"token": "t", "tokenExpiration": "2027-01-15T08:01:40"}', now
    ) == ("t", 100.0)
    assert (
        parse_exchange_answer(b'{"token": "t", "tokenExpiration": "2020-01-01T00:00Z"}', now)[1]
        is None
    )
    assert parse_exchange_answer(b'{"token": "t", "tokenExpiration": "soon"}', now)[1] is None
    assert parse_exchange_answer(b'{"token": " t "}', now) == ("t", None)
    assert renewal_margin(3600) == 60.0 and renewal_margin(3) == pytest.approx(0.3)


def test_credentials_repr_and_method_validation() -> None:
    from pydantic import SecretStr

    credentials = Credentials(SecretStr(API_KEY), "exchange")
    credentials.store_token("sekrit-token", 10)
    assert "sekrit" not in repr(credentials)
    with pytest.raises(ImmutaValidationError, match="auth_method 'oauth' must be one of"):
        ImmutaClient(BASE_URL, API_KEY, auth_method="oauth")
