"""What every test DAG file shares: its start date, default arguments and XCom templates.

The test DAGs chain their tasks with ``trigger_rule="all_done"`` so that ``dag.test()`` runs them
one after the other in a fixed order and the failures some scenarios expect do not stop the rest.
"""

from __future__ import annotations

import datetime
from typing import Any

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
DEFAULTS: dict[str, Any] = {"trigger_rule": "all_done", "retries": 0}


def pulled(task_id: str, field: str) -> str:
    """A template reading one field of a task's XCom dict (what a user would write)."""
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['{field}'] }}}}"
