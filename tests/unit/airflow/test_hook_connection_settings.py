"""Parsing Airflow connections of type ``immuta`` (URI and JSON forms) into client settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.support.airflow_versions import connection_from_json, connection_from_uri

from immuta_provider.hooks.connection_settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    InvalidImmutaConnection,
    settings_from_connection,
)

KEY = "an-immuta-api-key-123"


def from_uri(uri: str) -> Any:
    return connection_from_uri(uri, conn_id="immuta_test")


def from_json(**fields: object) -> Any:
    return connection_from_json(
        json.dumps({"conn_type": "immuta", **fields}), conn_id="immuta_test"
    )


def test_json_form_with_full_url_and_defaults() -> None:
    settings = settings_from_connection(
        from_json(host="https://acme.hosted.immutacloud.com/", password=KEY)
    )
    assert settings.base_url == "https://acme.hosted.immutacloud.com"
    assert settings.api_key == KEY
    assert settings.timeout == DEFAULT_TIMEOUT
    assert settings.max_retries == DEFAULT_MAX_RETRIES
    assert settings.verify is True
    assert settings.conn_id == "immuta_test"


def test_json_form_typed_extras() -> None:
    settings = settings_from_connection(
        from_json(
            host="http://127.0.0.1:8765",
            password=KEY,
            extra={"timeout": 5, "max_retries": 0, "verify_ssl": True, "ca_bundle": "/ca.pem"},
        )
    )
    assert settings.base_url == "http://127.0.0.1:8765"
    assert (settings.timeout, settings.max_retries, settings.verify) == (5.0, 0, "/ca.pem")


def test_uri_form_host_with_protocol_and_string_extras() -> None:
    # Airflow's "protocol in host" URI form: immuta://https://:KEY@host:port
    conn = from_uri(
        "immuta://https://:se%2Fcret-key@acme.hosted.immutacloud.com:8443"
        "?timeout=12.5&max_retries=1&verify_ssl=false"
    )
    settings = settings_from_connection(conn)
    assert settings.base_url == "https://acme.hosted.immutacloud.com:8443"
    assert settings.api_key == "se/cret-key"
    assert (settings.timeout, settings.max_retries, settings.verify) == (12.5, 1, False)


def test_uri_form_bare_host_defaults_to_https_and_scheme_extra_picks_http() -> None:
    assert (
        settings_from_connection(from_uri(f"immuta://:{KEY}@acme.hosted.immutacloud.com")).base_url
        == "https://acme.hosted.immutacloud.com"
    )
    assert (
        settings_from_connection(from_uri(f"immuta://:{KEY}@127.0.0.1:8765?scheme=http")).base_url
        == "http://127.0.0.1:8765"
    )


def test_prefixed_extras_written_by_older_uis_are_read() -> None:
    settings = settings_from_connection(
        from_json(
            host="https://acme.example",
            password=KEY,
            extra={"extra__immuta__timeout": "7", "extra__immuta__verify_ssl": "0"},
        )
    )
    assert (settings.timeout, settings.verify) == (7.0, False)


def test_blank_extras_mean_defaults() -> None:
    settings = settings_from_connection(
        from_json(
            host="https://acme.example",
            password=KEY,
            extra={"timeout": "", "max_retries": None, "ca_bundle": ""},
        )
    )
    assert (settings.timeout, settings.max_retries, settings.verify) == (
        DEFAULT_TIMEOUT,
        DEFAULT_MAX_RETRIES,
        True,
    )


def test_port_field_is_added_to_a_url_without_one() -> None:
    settings = settings_from_connection(
        from_json(host="https://acme.example/immuta", port=8443, password=KEY)
    )
    assert settings.base_url == "https://acme.example:8443/immuta"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"password": KEY}, "has no host"),
        ({"host": "   ", "password": KEY}, "has no host"),
        ({"host": "https://acme.example"}, "has no API key"),
        ({"host": "https://acme.example", "password": "  "}, "has no API key"),
        ({"host": "ftp://acme.example", "password": KEY}, "not an http(s) URL"),
        ({"host": "https://", "password": KEY}, "has no host name"),
        ({"host": "https://acme.example/#/connections", "password": KEY}, "bare Immuta URL"),
        ({"host": "https://acme.example:8443", "port": 9000, "password": KEY}, "port"),
        (
            {"host": "https://acme.example", "password": KEY, "extra": {"scheme": "http"}},
            "remove one of them",
        ),
        ({"host": "acme.example", "password": KEY, "extra": {"scheme": "ftp"}}, "http or https"),
        ({"host": "acme.example", "password": KEY, "extra": {"timeout": "soon"}}, "'timeout'"),
        ({"host": "acme.example", "password": KEY, "extra": {"timeout": 0}}, "'timeout'"),
        ({"host": "acme.example", "password": KEY, "extra": {"max_retries": -1}}, "max_retries"),
        ({"host": "acme.example", "password": KEY, "extra": {"max_retries": 1.5}}, "whole number"),
        ({"host": "acme.example", "password": KEY, "extra": {"verify_ssl": "maybe"}}, "verify_ssl"),
        (
            {"host": "acme.example", "password": KEY, "extra": {"auth_method": "oauth"}},
            "'auth_method' must be one of auto, exchange, bearer-key, raw-key, got 'oauth'",
        ),
    ],
)
def test_invalid_connections_name_the_connection_and_the_fix(
    fields: dict[str, object], expected: str
) -> None:
    with pytest.raises(InvalidImmutaConnection) as info:
        settings_from_connection(from_json(**fields))
    message = str(info.value)
    assert "'immuta_test'" in message
    assert expected in message
    assert KEY not in message


def test_api_key_stays_out_of_repr_and_fingerprint() -> None:
    settings = settings_from_connection(from_json(host="https://acme.example", password=KEY))
    assert KEY not in repr(settings)
    assert KEY not in settings.fingerprint
    assert KEY not in repr(settings.fingerprint)


def test_fingerprint_changes_with_anything_that_shapes_the_client() -> None:
    base = settings_from_connection(from_json(host="https://acme.example", password=KEY))
    same = settings_from_connection(from_json(host="https://acme.example/", password=KEY))
    other_key = settings_from_connection(from_json(host="https://acme.example", password=KEY + "x"))
    other_timeout = settings_from_connection(
        from_json(host="https://acme.example", password=KEY, extra={"timeout": 3})
    )
    other_auth = settings_from_connection(
        from_json(host="https://acme.example", password=KEY, extra={"auth_method": "raw-key"})
    )
    assert base.fingerprint == same.fingerprint
    fingerprints = {base, other_key, other_timeout, other_auth}
    assert len({settings.fingerprint for settings in fingerprints}) == 4


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "auto"),
        ({"auth_method": ""}, "auto"),
        ({"auth_method": "exchange"}, "exchange"),
        ({"auth_method": " Bearer_Key "}, "bearer-key"),
        ({"extra__immuta__auth_method": "raw-key"}, "raw-key"),
    ],
)
def test_auth_method_extra_defaults_to_auto_and_reaches_the_client(
    extra: dict[str, str], expected: str
) -> None:
    from immuta_provider.client import ImmutaClient

    settings = settings_from_connection(
        from_json(host="https://acme.example", password=KEY, extra=extra)
    )
    assert settings.auth_method == expected
    with ImmutaClient(**settings.client_kwargs()) as client:
        assert client.auth_method == expected


def test_client_kwargs_build_a_real_client() -> None:
    from immuta_provider.client import ImmutaClient

    settings = settings_from_connection(
        from_json(host="https://acme.example", password=KEY, extra={"timeout": 45})
    )
    kwargs = settings.client_kwargs(max_retries=0)
    assert kwargs["max_retries"] == 0
    assert kwargs["read_timeout"] == 45
    assert kwargs["connect_timeout"] == 10
    assert kwargs["total_timeout"] >= 45
    with ImmutaClient(**kwargs) as client:
        assert KEY not in repr(client)
