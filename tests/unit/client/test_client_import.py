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
