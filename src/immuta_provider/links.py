"""Extra links from an Airflow task to the Immuta UI: the connection and the task run.

The operators and the sensor store what the links need (Immuta URL, connection key, task and run
ids) in the XCom :data:`LINK_XCOM_KEY` while they run, so the links keep working after the run
and when the API server rebuilds the task from its serialized form. The URLs themselves come from
``immuta_provider.client.ui``, the one place that knows the Immuta UI's routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from immuta_provider._compat import BaseOperatorLink, get_xcom_value
from immuta_provider.client import ui

if TYPE_CHECKING:
    from immuta_provider._compat import BaseOperator

LINK_XCOM_KEY = "immuta_link"
"""XCom key of the dict the links read: ``base_url``, ``connection_key``, ``immuta_task_id``,
``run_id``."""


def link_info(
    base_url: str,
    connection_key: str,
    immuta_task_id: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The XCom value the links read (contains no secret)."""
    return {
        "base_url": base_url,
        "connection_key": connection_key,
        "immuta_task_id": immuta_task_id,
        "run_id": run_id,
    }


class ImmutaConnectionLink(BaseOperatorLink):
    """Opens the Immuta connection the task worked on."""

    name = "Immuta connection"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        """The connection's Immuta UI page, or ``""`` before the task has run."""
        info = get_xcom_value(ti_key, LINK_XCOM_KEY)
        if not info or not info.get("connection_key"):
            return ""

        return ui.connection_url(info["base_url"], info["connection_key"])


class ImmutaTaskRunLink(BaseOperatorLink):
    """Opens the Immuta task run the task started or waited for."""

    name = "Immuta task run"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        """The run's Immuta UI page, or ``""`` until the run is known."""
        info = get_xcom_value(ti_key, LINK_XCOM_KEY)
        if not info or not (info.get("immuta_task_id") and info.get("run_id")):
            return ""

        return ui.task_run_url(
            info["base_url"], info["connection_key"], info["immuta_task_id"], info["run_id"]
        )
