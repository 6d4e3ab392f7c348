"""Write, as JSON, the ``immuta`` connection form the installed Airflow's UI would get.

    python tests/versions/form_probe.py OUT_JSON

Run in a child process with a clean ``sys.modules``, so that whether Airflow imported our hook
to build the form (2.11-3.1: the hook methods) or not (3.2+: ``conn-fields``) can be seen.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def main(out_path: str) -> int:
    from airflow.providers_manager import ProvidersManager

    out: dict[str, Any] = {}
    try:
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    except ImportError:  # Airflow 2.11: the Flask web server reads the providers manager
        manager = ProvidersManager()
        hook = manager.hooks["immuta"]
        out["hook_name"] = hook.hook_name if hook else None
        out["relabeling"] = manager.field_behaviours["immuta"]["relabeling"]
        out["hidden"] = manager.field_behaviours["immuta"]["hidden_fields"]
        out["extras"] = sorted(
            info.field_name
            for name, info in manager.connection_form_widgets.items()
            if name.startswith("extra__immuta__")
        )
    else:
        (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "immuta"]
        standard = meta.standard_fields  # None: Airflow's plain form (3.0 without FAB)
        out["hook_name"] = meta.hook_name
        out["relabeling"] = {
            name: getattr(standard, attr).title
            for name, attr in (("host", "host"), ("password", "password"))
            if standard is not None and getattr(standard, attr) is not None
        }
        out["hidden"] = sorted(
            name
            for name, attr in (("login", "login"), ("port", "port"), ("schema", "url_schema"))
            if standard is not None and getattr(standard, attr).hidden
        )
        out["extras"] = sorted(meta.extra_fields or {})
        out["defaults"] = {k: v.get("value") for k, v in (meta.extra_fields or {}).items()}
    out["hook_imported"] = "immuta_provider.hooks.immuta" in sys.modules
    # A file, not stdout: Airflow 2.11-3.1 log to stdout around it.
    Path(out_path).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
