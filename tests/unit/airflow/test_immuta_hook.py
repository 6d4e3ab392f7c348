"""ImmutaHook: reading the Airflow connection, validation, and the connection test's diagnoses.

The connection comes from a real ``AIRFLOW_CONN_*`` environment variable read by Airflow; the
diagnoses are checked against tiny local HTTP servers that answer like the things users point
the connection at by mistake.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.support.airflow_versions import redact

from immuta_provider._compat import AirflowException
from immuta_provider.client import ImmutaClient
from immuta_provider.hooks.immuta import ImmutaHook

KEY = "hook-test-api-key-0987"


def set_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str = "immuta_default", **fields: object
) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "immuta", **fields})
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Answer(BaseHTTPRequestHandler):
    status = 200
    content_type = "application/json"
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes, content_type: str = "application/json") -> str:
        handler = type(
            "Handler", (_Answer,), {"status": status, "body": body, "content_type": content_type}
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_hook_identity() -> None:
    assert ImmutaHook.conn_name_attr == "immuta_conn_id"
    assert ImmutaHook.default_conn_name == "immuta_default"
    assert ImmutaHook.conn_type == "immuta"
    assert ImmutaHook.hook_name == "Immuta"
    assert ImmutaHook().immuta_conn_id == "immuta_default"


def test_client_is_built_from_the_airflow_connection_and_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(monkeypatch, host="https://acme.hosted.immutacloud.com", password=KEY)
    hook = ImmutaHook()
    client = hook.get_client()
    assert isinstance(client, ImmutaClient)
    assert hook.get_client() is client
    assert hook.get_conn() is client
    assert hook.base_url == "https://acme.hosted.immutacloud.com"
    assert hook.connection_url("snowflake-prod") == (
        "https://acme.hosted.immutacloud.com/#/connections/snowflake-prod"
    )
    assert KEY not in repr(client)
    hook.close()


def test_invalid_connection_fails_clearly_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, conn_id="immuta_broken", host="ftp://acme.example", password=KEY)
    with pytest.raises(AirflowException, match=r"'immuta_broken'.*not an http\(s\) URL"):
        ImmutaHook("immuta_broken").get_client()
    set_connection(monkeypatch, conn_id="immuta_nokey", host="https://acme.example")
    with pytest.raises(AirflowException, match=r"'immuta_nokey' has no API key"):
        ImmutaHook("immuta_nokey").get_client()


def test_the_api_key_is_registered_with_the_secrets_masker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(monkeypatch, host="https://acme.example", password=KEY)
    ImmutaHook().get_client()
    assert KEY not in redact(f"the key is {KEY}")


async def test_async_settings_and_shared_client(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, host="https://acme.example", password=KEY, extra={"timeout": 4})
    first, second = ImmutaHook(), ImmutaHook()
    settings = await first.aget_settings()
    assert settings.timeout == 4
    async with first.shared_async_client() as a, second.shared_async_client() as b:
        assert a is b


def test_connection_test_reports_an_unreachable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, host=f"http://127.0.0.1:{free_port()}", password=KEY)
    ok, message = ImmutaHook().test_connection()
    assert not ok
    assert message.startswith("Cannot reach http://127.0.0.1:")
    assert KEY not in message


def test_connection_test_reports_a_tls_failure(
    monkeypatch: pytest.MonkeyPatch, serve: object
) -> None:
    plain = serve(200, b"{}")  # type: ignore[operator]
    set_connection(monkeypatch, host=plain.replace("http://", "https://"), password=KEY)
    ok, message = ImmutaHook().test_connection()
    assert not ok
    assert message.startswith("TLS error")
    assert "ca_bundle" in message
    assert KEY not in message


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (
            401,
            b'{"statusCode":401,"error":"Unauthorized","message":"bad"}',
            "application/json",
            "rejected the API key (401)",
        ),
        (
            403,
            b'{"statusCode":403,"error":"Forbidden","message":"no"}',
            "application/json",
            "lacks permission",
        ),
        (404, b"<html><body>Not Found</body></html>", "text/html", "is not an Immuta API"),
        (
            200,
            b"<!doctype html><html><title>Welcome</title></html>",
            "text/html",
            "is not an Immuta API",
        ),
    ],
)
def test_connection_test_diagnoses_what_answered(
    monkeypatch: pytest.MonkeyPatch,
    serve: object,
    status: int,
    body: bytes,
    content_type: str,
    expected: str,
) -> None:
    url = serve(status, body, content_type)  # type: ignore[operator]
    # This server has no token exchange (it answers GET only): the key itself, as a bearer.
    set_connection(monkeypatch, host=url, password=KEY, extra={"auth_method": "bearer-key"})
    ok, message = ImmutaHook().test_connection()
    assert not ok
    assert expected in message
    assert KEY not in message


def test_connection_test_reports_an_invalid_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, password=KEY)
    ok, message = ImmutaHook().test_connection()
    assert not ok
    assert "has no host" in message


def test_connection_test_succeeds_against_an_immuta_like_answer(
    monkeypatch: pytest.MonkeyPatch, serve: object
) -> None:
    url = serve(200, b'{"connections": [], "page": {"nextCursor": null}}')  # type: ignore[operator]
    set_connection(monkeypatch, host=url, password=KEY, extra={"auth_method": "bearer-key"})
    ok, message = ImmutaHook().test_connection()
    assert ok, message
    assert "authenticated by sending the API key as a bearer token" in message


def test_connection_test_timeout_names_the_real_connect_and_read_timeouts() -> None:
    from immuta_provider.client.errors import ImmutaTimeoutError
    from immuta_provider.hooks.connection_settings import ImmutaConnectionSettings
    from immuta_provider.hooks.immuta import describe_connection_failure

    settings = ImmutaConnectionSettings(
        conn_id="immuta_default",
        base_url="https://acme.hosted.immutacloud.com",
        api_key=KEY,
        timeout=45.0,
        max_retries=0,
        verify=True,
    )
    message = describe_connection_failure(
        ImmutaTimeoutError("read timed out", method="GET", path="/api/connections"), settings
    )
    assert "connect timeout 10s, read timeout 45s" in message
    assert KEY not in message
