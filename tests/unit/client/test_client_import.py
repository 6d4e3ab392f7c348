"""The client imports without Airflow, and stays light (no Airflow, FastAPI, emulator)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a fresh interpreter where importing airflow (or fastapi) fails, as on a machine
# without them installed; then reports which heavy modules the client pulled in.
_PROBE = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"airflow", "fastapi"}:
                raise ImportError(f"{name} is blocked for this test")
            return None

    sys.meta_path.insert(0, Block())
    try:
        import airflow
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker did not work")

    import immuta_provider.client as client
    from immuta_provider.client import AsyncImmutaClient, ImmutaClient, ui

    ImmutaClient("https://acme.example", "key").close()
    heavy = sorted(
        name for name in sys.modules
        if name.split(".")[0]
        in {"airflow", "fastapi", "uvicorn", "starlette", "sqlalchemy", "aiohttp"}
        or name.startswith("immuta_provider.emulator")
    )
    print(json.dumps({"exports": len(client.__all__), "heavy": heavy}))
    """
)


def test_client_imports_without_airflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('"heavy": []}'), result.stdout


_LIGHT_PROBE = textwrap.dedent(
    """
    import json, sys
    import immuta_provider.client
    import immuta_provider.client.errors
    import immuta_provider.client.ui
    import immuta_provider.client.vocabulary
    from immuta_provider.client import REDACTED, ImmutaError, TaskStatus, connection_url

    heavy = sorted(
        name for name in sys.modules
        if name.split(".")[0] in {"httpx", "pydantic", "pydantic_core", "tenacity", "aiohttp"}
        or name.startswith(("immuta_provider.client._", "immuta_provider.client.models"))
    )
    print(json.dumps(heavy))
    """
)


def test_vocabulary_errors_and_the_package_load_no_http_or_model_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LIGHT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_the_lazy_package_exports_every_name_it_lists() -> None:
    import immuta_provider.client as client

    for name in client.__all__:
        assert getattr(client, name) is not None, name
    assert client.TaskStatus.COMPLETED == "COMPLETED"
