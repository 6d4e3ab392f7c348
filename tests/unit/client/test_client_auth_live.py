"""Authentication over real HTTP against real emulator processes: every auth method against
every ``--auth`` mode (sync client, async client on httpx and on aiohttp), tokens expiring on the
emulator's clock, one exchange for 100 concurrent polls after expiry (counted by the emulator),
and what the connection test says for each outcome."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from immuta_provider.client import (
    AsyncImmutaClient,
    ImmutaAuthenticationError,
    ImmutaClient,
    ImmutaError,
    ImmutaNotFoundError,
)
from immuta_provider.emulator.process import RunningEmulator, run_emulator

MODES = ("any", "exchange-only", "key-only")
CLIENTS = ("sync", "httpx", "aiohttp")
TOKEN_TTL = 2.0  # the expiry emulator's token lifetime (renewed 0.2 s before its end)
# The concurrency emulator's: long enough that a renewed token outlives 100 polls on a busy
# machine, so every exchange counted is one the test caused.
BURST_TOKEN_TTL = 5.0
KEY = "snowflake-prod"


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, RunningEmulator]]:
    """One emulator per auth mode, plus exchange-only ones with short-lived tokens."""
    with (
        run_emulator(auth="any") as any_mode,
        run_emulator(auth="exchange-only") as exchange_only,
        run_emulator(auth="key-only") as key_only,
        run_emulator(auth="exchange-only", token_ttl=TOKEN_TTL, sync_duration=60) as expiring,
        run_emulator(auth="exchange-only", token_ttl=BURST_TOKEN_TTL, sync_duration=60) as burst,
    ):
        yield {
            "any": any_mode,
            "exchange-only": exchange_only,
            "key-only": key_only,
            "expiring": expiring,
            "burst": burst,
        }


def auth_counters(emulator: RunningEmulator) -> dict[str, Any]:
    counters: dict[str, Any] = emulator.admin.counters()["auth"]
    return counters


async def list_one(kind: str, emulator: RunningEmulator, method: str) -> str | None:
    """List one connection with a fresh client; returns the method the client ended up using."""
    if kind == "sync":
        with ImmutaClient(emulator.url, emulator.api_key, auth_method=method) as client:
            client.list_connections(page_size=1).get_page()
            return client.authenticated_by
    async with AsyncImmutaClient(
        emulator.url,
        emulator.api_key,
        auth_method=method,
        http_backend=kind,  # type: ignore[arg-type]
    ) as client:
        await client.list_connections(page_size=1).get_page()
        return client.authenticated_by


# (method, mode) -> the method in use, or the error and the words of its message.
OUTCOMES: dict[tuple[str, str], Any] = {
    ("auto", "any"): "exchange",
    ("auto", "exchange-only"): "exchange",
    ("auto", "key-only"): "bearer-key",
    ("exchange", "any"): "exchange",
    ("exchange", "exchange-only"): "exchange",
    ("exchange", "key-only"): (ImmutaNotFoundError, "no POST /bim/apikey/authenticate endpoint"),
    ("bearer-key", "any"): "bearer-key",
    ("bearer-key", "exchange-only"): (ImmutaAuthenticationError, "accepts tokens only"),
    ("bearer-key", "key-only"): "bearer-key",
    ("raw-key", "any"): "raw-key",
    ("raw-key", "exchange-only"): (ImmutaAuthenticationError, "accepts tokens only"),
    ("raw-key", "key-only"): "raw-key",
}


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize(("method", "mode"), sorted(OUTCOMES))
async def test_every_method_against_every_mode(
    emulators: dict[str, RunningEmulator], kind: str, method: str, mode: str
) -> None:
    emulator = emulators[mode]
    before = auth_counters(emulator)["exchanges"]
    expected = OUTCOMES[(method, mode)]
    if isinstance(expected, str):
        assert await list_one(kind, emulator, method) == expected
        exchanged = auth_counters(emulator)["exchanges"] - before
        assert exchanged == (1 if expected == "exchange" else 0)
    else:
        error_class, words = expected
        with pytest.raises(error_class, match=words):
            await list_one(kind, emulator, method)


def test_sync_client_renews_its_token_as_it_expires(emulators: dict[str, RunningEmulator]) -> None:
    emulator = emulators["expiring"]
    before = auth_counters(emulator)
    with ImmutaClient(emulator.url, emulator.api_key, auth_method="exchange") as client:
        started = time.monotonic()
        polls = 0
        while time.monotonic() - started < 3.5 * TOKEN_TTL:
            client.get_connection(KEY)
            polls += 1
            time.sleep(0.05)
    after = auth_counters(emulator)
    exchanges = after["exchanges"] - before["exchanges"]
    # About one exchange per token lifetime (renewed 10 % early), and no 401 at all.
    assert 4 <= exchanges <= 5, exchanges
    assert after["unauthorized"] == before["unauthorized"]
    assert polls > 20


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_100_concurrent_polls_after_expiry_cause_one_exchange(
    emulators: dict[str, RunningEmulator], backend: str
) -> None:
    emulator = emulators["burst"]
    async with AsyncImmutaClient(
        emulator.url,
        emulator.api_key,
        auth_method="exchange",
        http_backend=backend,  # type: ignore[arg-type]
    ) as client:
        task = await client.create_task(KEY)
        run = (await client.list_task_runs(KEY, task.task_id).get_page()).items[0]
        start = auth_counters(emulator)

        async def poll_100() -> None:
            runs = await asyncio.gather(
                *(client.get_task_run(KEY, task.task_id, run.run_id) for _ in range(100))
            )
            assert {r.run_id for r in runs} == {run.run_id}

        await asyncio.sleep(BURST_TOKEN_TTL * 0.92)  # past the renewal point (90 %), not the end
        await poll_100()
        expired = auth_counters(emulator)
        # Immuta forgets every token (a restart): all 100 polls in flight meet a 401.
        emulator.admin.revoke_tokens()
        await poll_100()
        revoked = auth_counters(emulator)
    assert expired["exchanges"] - start["exchanges"] == 1
    assert expired["unauthorized"] == start["unauthorized"]
    assert revoked["exchanges"] - expired["exchanges"] == 1
    refused = sum(revoked["unauthorized"].values()) - sum(expired["unauthorized"].values())
    assert 1 <= refused <= 100


def test_threads_after_expiry_cause_one_exchange(emulators: dict[str, RunningEmulator]) -> None:
    emulator = emulators["expiring"]
    errors: list[BaseException] = []
    with ImmutaClient(emulator.url, emulator.api_key, auth_method="exchange") as client:
        client.get_connection(KEY)
        time.sleep(TOKEN_TTL)
        before = auth_counters(emulator)["exchanges"]
        barrier = threading.Barrier(16)

        def poll() -> None:
            barrier.wait()
            try:
                client.get_connection(KEY)
            except ImmutaError as error:
                errors.append(error)

        threads = [threading.Thread(target=poll) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert auth_counters(emulator)["exchanges"] - before == 1


# --- the connection test (the Test button, `airflow connections test`) -----------------------


def connection_test(
    monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator, method: str, key: str | None = None
) -> tuple[bool, str]:
    from immuta_provider.hooks.immuta import ImmutaHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_AUTH_TEST",
        json.dumps(
            {
                "conn_type": "immuta",
                "host": emulator.url,
                "password": key or emulator.api_key,
                "extra": {"auth_method": method},
            }
        ),
    )
    ok, message = ImmutaHook("immuta_auth_test").test_connection()
    assert emulator.api_key not in message
    return ok, message


@pytest.mark.parametrize(
    ("mode", "method", "key", "ok", "words"),
    [
        ("any", "auto", None, True, "authenticated by exchanging the API key for a token"),
        ("key-only", "auto", None, True, "authenticated by sending the API key as a bearer token"),
        ("any", "raw-key", None, True, "sending the API key itself in the Authorization header"),
        (
            "exchange-only",
            "auto",
            "wrong-key",
            False,
            "refused the API key when exchanging it for a token "
            "(POST /bim/apikey/authenticate answered 401)",
        ),
        (
            "exchange-only",
            "bearer-key",
            None,
            False,
            "rejected the API key (401) when sending the API key as a bearer token",
        ),
        (
            "key-only",
            "exchange",
            None,
            False,
            "has no token exchange (POST /bim/apikey/authenticate answered 404): set the "
            "'auth_method' extra",
        ),
    ],
)
def test_connection_test_says_which_method_worked_or_which_step_failed(
    monkeypatch: pytest.MonkeyPatch,
    emulators: dict[str, RunningEmulator],
    mode: str,
    method: str,
    key: str | None,
    ok: bool,
    words: str,
) -> None:
    result, message = connection_test(monkeypatch, emulators[mode], method, key)
    assert (result, words in message) == (ok, True), message


def test_connection_test_when_the_api_refuses_the_token(
    monkeypatch: pytest.MonkeyPatch, emulators: dict[str, RunningEmulator]
) -> None:
    emulator = emulators["exchange-only"]
    fault = emulator.admin.add_fault(method="GET", path="/api/connections", status=401, count=2)
    try:
        ok, message = connection_test(monkeypatch, emulator, "auto")
    finally:
        emulator.admin.remove_fault(fault)
    assert not ok
    assert "The API key was exchanged for a token, but Immuta" in message
    assert "refused the token for GET /api/connections (401)" in message
    assert "permission" in message
    for token in emulator.admin.tokens():
        assert token not in message
