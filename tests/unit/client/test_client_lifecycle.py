"""Client construction, repr (never the key), context managers, one pool, User-Agent."""

from __future__ import annotations

import re
import warnings

import certifi
import httpx
import pytest

from immuta_provider import __version__
from immuta_provider.client import USER_AGENT, AsyncImmutaClient, ClientConfig, ImmutaClient

KEY = "sk-live-9f8e7d6c5b4a"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"connectionKey": "k"})


def test_repr_of_client_and_config_hides_the_key() -> None:
    client = ImmutaClient("https://acme.example/", KEY, auth_method="bearer-key")
    assert (
        repr(client)
        == "ImmutaClient(base_url='https://acme.example', max_retries=3, auth_method='bearer-key')"
    )
    assert KEY not in repr(client.config) and KEY not in str(client.config)
    assert "api_key=SecretStr('**********')" in repr(client.config)
    assert client.config.api_key.get_secret_value() == KEY
    assert KEY not in repr(vars(client.config))
    client.close()


async def test_async_repr_hides_the_key() -> None:
    async with AsyncImmutaClient(
        "https://acme.example", KEY, max_retries=1, auth_method="bearer-key"
    ) as client:
        assert (
            repr(client) == "AsyncImmutaClient(base_url='https://acme.example', max_retries=1, "
            "auth_method='bearer-key')"
        )
        assert KEY not in repr(client.config)


def test_defaults_are_the_documented_ones() -> None:
    config = ClientConfig.create("https://acme.example", KEY)
    assert (
        config.max_retries,
        config.connect_timeout,
        config.read_timeout,
        config.total_timeout,
        config.retry_after_cap,
        config.verify,
    ) == (3, 10.0, 30.0, 120.0, 60.0, True)


def test_user_agent() -> None:
    assert re.fullmatch(
        rf"airflow-provider-immuta/{re.escape(__version__)} httpx/{re.escape(httpx.__version__)}"
        r" python/\d+\.\d+\.\d+\S*",
        USER_AGENT,
    )


def test_context_manager_closes_the_pool() -> None:
    with ImmutaClient(
        "https://acme.example", KEY, transport=httpx.MockTransport(_ok), auth_method="bearer-key"
    ) as client:
        client.get_connection("k")
        assert not client._http.is_closed
    assert client._http.is_closed
    with pytest.raises(RuntimeError):
        client.get_connection("k")


async def test_async_context_manager_closes_the_pool() -> None:
    transport = httpx.MockTransport(_ok)
    async with AsyncImmutaClient(
        "https://acme.example", KEY, transport=transport, auth_method="bearer-key"
    ) as client:
        await client.get_connection("k")
    assert client._http.is_closed
    other = AsyncImmutaClient(
        "https://acme.example", KEY, transport=transport, auth_method="bearer-key"
    )
    await other.aclose()
    assert other._http.is_closed


def test_every_call_goes_through_the_one_transport() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return _ok(request)

    with ImmutaClient(
        "https://acme.example", KEY, transport=httpx.MockTransport(answer), auth_method="bearer-key"
    ) as c:
        pool = c._http
        c.get_connection("a")
        c.get_connection("b")
        assert c._http is pool
    assert calls == ["/api/connections/a", "/api/connections/b"]


def test_verify_accepts_a_ca_bundle_path_without_deprecation_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImmutaClient(
            "https://acme.example", KEY, verify=certifi.where(), auth_method="bearer-key"
        ).close()
        ImmutaClient("https://acme.example", KEY, verify=False, auth_method="bearer-key").close()
