"""The emulator's authentication: the key exchange at ``POST /bim/apikey/authenticate``, token
lifetimes on the emulator's clock, the three ``--auth`` modes, and the counters by cause."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from tests.unit.emulator.conftest import API_KEY, START, Api

from immuta_provider.emulator.cli import build_parser
from immuta_provider.emulator.tokens import Authenticator

EXCHANGE = "/bim/apikey/authenticate"
LIST = "/api/connections"


def exchange(api: Api, **kw: Any) -> Any:
    return api.client.post(EXCHANGE, **kw)


def token_of(api: Api) -> str:
    response = exchange(api, json={"apikey": API_KEY})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def status(api: Api, authorization: str | None) -> int:
    headers = {} if authorization is None else {"Authorization": authorization}
    return int(api.client.get(LIST, headers=headers).status_code)


def test_exchange_answers_a_token_and_its_expiration_in_every_documented_form(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(token_ttl=120.0)
    answers = [
        exchange(api, json={"apikey": API_KEY}),
        exchange(api, data={"apikey": API_KEY}),  # form-encoded
        exchange(api, headers={"Authorization": API_KEY}),
        exchange(api, headers={"Authorization": f"Bearer {API_KEY}"}),
    ]
    tokens = set()
    for response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"token", "tokenExpiration"}
        expires = datetime.fromisoformat(body["tokenExpiration"].replace("Z", "+00:00"))
        assert expires.timestamp() == pytest.approx(START + 120.0)
        assert API_KEY not in body["token"]
        tokens.add(body["token"])
    assert len(tokens) == 4
    auth = api.client.get("/_emulator/counters").json()["auth"]
    assert auth["exchanges"] == 4
    assert api.client.get("/_emulator/tokens").json()["issued"] == [
        response.json()["token"] for response in answers
    ]


@pytest.mark.parametrize(
    "kw",
    [
        {"json": {"apikey": "wrong"}},
        {"json": {}},
        {"content": b"not json", "headers": {"content-type": "application/json"}},
        {"headers": {"Authorization": "Bearer wrong"}},
    ],
)
def test_exchange_refuses_a_wrong_or_missing_key_with_401(api: Api, kw: dict[str, Any]) -> None:
    response = exchange(api, **kw)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert "API key" in response.json()["message"]
    assert api.client.get("/_emulator/counters").json()["auth"]["exchanges_refused"] == 1


def test_exchange_is_post_only(api: Api) -> None:
    response = api.client.get(EXCHANGE)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_mode_any_accepts_the_key_as_bearer_the_raw_key_and_a_token(api: Api) -> None:
    token = token_of(api)
    assert status(api, f"Bearer {API_KEY}") == 200
    assert status(api, API_KEY) == 200
    assert status(api, f"Bearer {token}") == 200
    assert status(api, f"bearer {token}") == 200


def test_mode_exchange_only_accepts_tokens_only(make_api: Callable[..., Api]) -> None:
    api = make_api(auth="exchange-only")
    token = token_of(api)
    assert status(api, f"Bearer {token}") == 200
    for refused in (f"Bearer {API_KEY}", API_KEY):
        response = api.client.get(LIST, headers={"Authorization": refused})
        assert response.status_code == 401
        assert "accepts tokens only" in response.json()["message"]
    auth = api.client.get("/_emulator/counters").json()["auth"]
    assert auth["unauthorized"] == {"key_not_accepted": 2}
    assert auth["mode"] == "exchange-only"


def test_mode_key_only_has_no_exchange_endpoint(make_api: Callable[..., Api]) -> None:
    api = make_api(auth="key-only")
    response = exchange(api, json={"apikey": API_KEY})
    assert response.status_code == 404
    assert response.json()["statusCode"] == 404
    assert status(api, f"Bearer {API_KEY}") == 200
    assert status(api, API_KEY) == 200


def test_tokens_expire_on_the_emulators_clock_and_401s_are_counted_by_cause(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(auth="exchange-only", token_ttl=3.0)
    token = token_of(api)
    api.clock.advance(2.9)
    assert status(api, f"Bearer {token}") == 200
    api.clock.advance(0.2)
    response = api.client.get(LIST, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["message"]
    assert status(api, None) == 401
    assert status(api, "Bearer not-a-token") == 401
    # The admin clock expires tokens too.
    fresh = token_of(api)
    api.client.post("/_emulator/clock/advance", json={"seconds": 5})
    assert status(api, f"Bearer {fresh}") == 401
    auth = api.client.get("/_emulator/counters").json()["auth"]
    assert auth["unauthorized"] == {
        "expired_token": 2,
        "missing_header": 1,
        "invalid_credentials": 1,
    }
    assert auth["exchanges"] == 2


def test_revoking_tokens_and_reset(api: Api) -> None:
    token = token_of(api)
    assert api.client.delete("/_emulator/tokens").json() == {"revoked": 1}
    assert status(api, f"Bearer {token}") == 401
    api.client.post("/_emulator/reset")
    auth = api.client.get("/_emulator/counters").json()["auth"]
    assert (auth["exchanges"], auth["unauthorized"]) == (0, {})
    # Issued tokens stay listed (a leak scan needs every one).
    assert api.client.get("/_emulator/tokens").json()["issued"] == [token]


def test_faults_apply_to_the_exchange(api: Api) -> None:
    api.client.post("/_emulator/faults", json={"path": EXCHANGE, "status": 503, "count": 1})
    assert exchange(api, json={"apikey": API_KEY}).status_code == 503
    assert exchange(api, json={"apikey": API_KEY}).status_code == 200


def test_command_line_options() -> None:
    args = build_parser().parse_args(["--auth", "exchange-only", "--token-ttl", "3"])
    assert (args.auth, args.token_ttl) == ("exchange-only", 3.0)
    defaults = build_parser().parse_args([])
    assert (defaults.auth, defaults.token_ttl) == ("any", 3600.0)
    for bad in (["--auth", "oauth"], ["--token-ttl", "0"], ["--token-ttl", "soon"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)
    with pytest.raises(ValueError, match="auth mode"):
        Authenticator([API_KEY], mode="nope", clock=lambda: 0.0)
