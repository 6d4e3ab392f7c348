"""immuta-doctor --conn-id: URL, key and TLS settings from a real Airflow connection (an
``AIRFLOW_CONN_*`` variable read by Airflow), and a usage error (exit 2) when it cannot be used."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from tests.unit.doctor.test_doctor import KEY, FakeTenant, rename_statuses, tenant_data

from immuta_provider.doctor.cli import main


def test_conn_id_reads_the_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_DOCTOR",
        json.dumps({"conn_type": "immuta", "host": "immuta.acme.example", "password": KEY}),
    )
    tenant = FakeTenant()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return tenant(request)

    out = io.StringIO()
    assert (
        main(["--conn-id", "immuta_doctor"], stdout=out, transport=httpx.MockTransport(handler))
        == 0
    )
    text = out.getvalue()
    assert text.startswith(
        "immuta-doctor: https://immuta.acme.example (Airflow connection 'immuta_doctor')"
    )
    assert {r.url.host for r in seen} == {"immuta.acme.example"}
    # (auth_method auto: this tenant has no token exchange, so the key itself is sent)
    api_calls = [r for r in seen if r.url.path.startswith("/api/")]
    assert api_calls[0].headers["authorization"].endswith(KEY)
    assert KEY not in text


@pytest.mark.parametrize(
    ("connection", "said"),
    [
        (None, "cannot use Airflow connection 'immuta_doctor_missing'"),
        ({"conn_type": "immuta", "host": "immuta.acme.example"}, "has no API key"),
    ],
)
def test_an_unusable_connection_is_a_usage_error(
    connection: dict[str, str] | None,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if connection is not None:
        monkeypatch.setenv("AIRFLOW_CONN_IMMUTA_DOCTOR_MISSING", json.dumps(connection))
    assert main(["--conn-id", "immuta_doctor_missing"]) == 2
    assert said in capsys.readouterr().err


def test_conn_id_checks_against_the_connection_s_status_extras(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = rename_statuses(tenant_data(), {"COMPLETED": "SUCCEEDED", "FAILED": "ERROR"})
    conn = {"conn_type": "immuta", "host": "immuta.acme.example", "password": KEY}
    monkeypatch.setenv("AIRFLOW_CONN_IMMUTA_PLAIN", json.dumps(conn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_SET",
        json.dumps(
            {**conn, "extra": {"success_statuses": "SUCCEEDED", "failure_statuses": ["ERROR"]}}
        ),
    )
    out = io.StringIO()
    transport = httpx.MockTransport(FakeTenant(data))
    assert main(["--conn-id", "immuta_plain"], stdout=out, transport=transport) == 1
    assert main(["--conn-id", "immuta_set"], stdout=out, transport=transport) == 0
