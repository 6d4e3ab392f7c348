"""The real process: CLI start-up, the printed URL, signals, dropped connections, the access log,
TLS, a state file across restarts, and the pytest fixtures themselves."""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from immuta_provider.emulator.process import (
    EmulatorStartError,
    RunningEmulator,
    emulator_command,
    run_emulator,
    start_emulator,
)

CANARY = "canary-key-5b0c1e7f9a"


def test_fixture_gives_url_key_and_a_reset_emulator(emulator: RunningEmulator) -> None:
    assert emulator.url.startswith("http://127.0.0.1:")
    assert emulator.api_key == "immuta-demo-key"
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    body = {"connectionKey": "made-by-a-test", "technology": "Trino", "clientConfiguration": {}}
    assert (
        httpx.post(f"{emulator.url}/api/connections", json=body, headers=headers).status_code == 200
    )
    emulator.admin.add_fault(status=500, path="^/never$")
    emulator.admin.set_behaviour("snowflake-prod", stuck=True)
    emulator.admin.reset()
    assert emulator.admin.counters()["requests"] == {}
    assert (
        httpx.get(f"{emulator.url}/api/connections/made-by-a-test", headers=headers).status_code
        == 404
    )
    assert emulator.admin.faults() == []


def test_admin_is_also_a_plain_httpx_client(emulator: RunningEmulator) -> None:
    assert isinstance(emulator.admin, httpx.Client)
    assert emulator.admin.get("counters").json() == emulator.admin.counters()
    assert emulator.admin.get("/health").json()["status"] == "ok"
    fault_id = emulator.admin.post("faults", json={"status": 503, "path": "^/x$"}).json()["id"]
    assert [f["id"] for f in emulator.admin.faults()] == [fault_id]


def test_port_zero_prints_the_real_port_and_sigterm_exits_zero(tmp_path: Path) -> None:
    running = start_emulator(seed="none", log_dir=tmp_path)
    try:
        port = int(running.url.rsplit(":", 1)[1])
        assert port > 0
        lines = running.log().splitlines()
        assert lines[0] == f"Immuta emulator listening on http://127.0.0.1:{port}"
        assert lines[1] == "API key: immuta-demo-key"
        assert running.admin.health()["connections"] == 0
    finally:
        assert running.stop() == 0
    assert "Traceback" not in running.log()


def test_sigint_exits_zero(tmp_path: Path) -> None:
    running = start_emulator(seed="none", log_dir=tmp_path)
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(10) == 0
    running.admin.close()


def test_dropped_connection_is_a_protocol_error_not_a_500(emulator: RunningEmulator) -> None:
    emulator.admin.add_fault(method="GET", path="^/api/connections$", drop=True, count=2)
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.url, headers=headers) as client:
        client.get("/api/connections/snowflake-prod")  # a pooled, kept-alive connection
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api/connections")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api/connections")
        assert client.get("/api/connections").status_code == 200
    assert emulator.admin.counters()["faults_by_kind"] == {"drop": 2}
    assert "Exception in ASGI application" not in emulator.log()
    assert "returned without starting response" not in emulator.log()


async def test_dropped_connection_async_client(emulator: RunningEmulator) -> None:
    emulator.admin.add_fault(path="/tasks/", drop=True, count=1)
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
        task = (
            await client.post(
                "/api/connections/snowflake-prod/tasks", json={"type": "DATA_OBJECT_SYNC"}
            )
        ).json()
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"/api/connections/snowflake-prod/tasks/{task['taskId']}")
        response = await client.get(f"/api/connections/snowflake-prod/tasks/{task['taskId']}")
        assert response.json()["taskId"] == task["taskId"]


def test_access_log_never_holds_the_key(tmp_path: Path) -> None:
    access_log = tmp_path / "access.log"
    with run_emulator(
        seed="demo", api_keys=[CANARY], access_log=access_log, log_dir=tmp_path
    ) as running:
        assert running.api_key == CANARY and running.access_log == access_log
        for key in (CANARY, "wrong"):
            httpx.get(f"{running.url}/api/connections", headers={"Authorization": f"Bearer {key}"})
        httpx.get(
            f"{running.url}/api/connections?page%5Blimit%5D=5",
            headers={"Authorization": f"Bearer {CANARY}"},
        )
    text = access_log.read_text()
    assert '"GET /api/connections HTTP/1.1" 200' in text
    assert '"GET /api/connections HTTP/1.1" 401' in text
    assert CANARY not in text and "Bearer" not in text and "uthorization" not in text


def test_faults_file_and_state_file_in_the_real_process(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"method": "GET", "path": "/_validate$", "status": 503}]))
    state = tmp_path / "state.db"
    headers = {"Authorization": "Bearer immuta-demo-key"}
    body = {"connectionKey": "survivor", "technology": "Trino", "clientConfiguration": {}}
    with run_emulator(
        seed="none", state_file=state, faults_file=faults, log_dir=tmp_path
    ) as running:
        [fault] = running.admin.faults()
        assert fault["status"] == 503 and fault["path"] == "/_validate$"
        assert (
            httpx.post(f"{running.url}/api/connections", json=body, headers=headers).status_code
            == 200
        )
    with run_emulator(seed="demo", state_file=state, log_dir=tmp_path) as running:
        listed = httpx.get(f"{running.url}/api/connections", headers=headers).json()["connections"]
        assert [c["connectionKey"] for c in listed] == ["survivor"]


def test_bad_command_lines_exit_with_status_2(tmp_path: Path) -> None:
    base = emulator_command(port=0)
    no_key = subprocess.run(
        [*base, "--ssl-certfile", "x.pem"], capture_output=True, text=True, timeout=60
    )
    assert no_key.returncode == 2 and "go together" in no_key.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    bad_faults = subprocess.run(
        [*base, "--faults", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert bad_faults.returncode == 2 and "Cannot read --faults" in bad_faults.stderr
    with pytest.raises(EmulatorStartError, match="exited with 2"):
        start_emulator(faults_file=broken, log_dir=tmp_path, startup_timeout=60)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with run_emulator(ssl_certfile=cert, ssl_keyfile=key, log_dir=tmp_path) as running:
        assert running.url.startswith("https://127.0.0.1:")
        response = httpx.get(
            f"{running.url}/api/connections/snowflake-prod",
            headers={"Authorization": f"Bearer {running.api_key}"},
            verify=ssl.create_default_context(cafile=str(cert)),
        )
        assert response.json()["state"] == "ACTIVE"


def test_module_and_console_script_entry_points_agree() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "immuta_provider.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")},
    )
    assert helped.returncode == 0
    for flag in ("--state-file", "--faults", "--seed-objects", "--sync-duration", "--access-log"):
        assert flag in helped.stdout


def test_run_emulator_removes_its_own_temporary_directory() -> None:
    with run_emulator(seed="none") as running:
        directory = running.log_path.parent
        assert "listening on" in running.log()
    assert running.returncode == 0
    assert not directory.exists()
