"""DAG files import the operators at every parse: that import must stay light."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.airflow_versions import AUTHORING_MODULES, AUTHORING_PREFIXES

# The client package itself is lazy and its vocabulary, errors and UI links are light: the
# operators import those at parse time; the modules that send (and their libraries) stay out.
PARSE_TIME_HEAVY = (
    "immuta_provider.client._sync",
    "immuta_provider.client._async",
    "immuta_provider.client._base",
    "immuta_provider.client.models",
    "immuta_provider.client.endpoints",
    "httpx",
    "pydantic",
    "aiohttp",
    "immuta_provider.hooks",
    "immuta_provider.triggers",
    "immuta_provider.emulator",
    "tenacity",
    "airflow.triggers.base",
)


def test_operator_sensor_and_link_modules_do_not_import_the_client_or_triggers() -> None:
    code = (
        "import json, sys\n"
        f"import {', '.join(AUTHORING_MODULES)}\n"
        "before = set(sys.modules)\n"
        "import immuta_provider.operators.immuta, immuta_provider.sensors.immuta\n"
        "import immuta_provider.links\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    added = json.loads(result.stdout.strip().splitlines()[-1])
    loaded_heavy = [
        m for m in added if any(m == h or m.startswith(h + ".") for h in PARSE_TIME_HEAVY)
    ]
    assert loaded_heavy == []
    # Only our own light modules and the SDK's base classes come in on top of airflow.sdk.
    assert all(m.startswith(("immuta_provider", *AUTHORING_PREFIXES)) for m in added), added
