"""What every Immuta operator and sensor has: the hook of ``immuta_conn_id``, built when the task
runs, and the one way to store what the Immuta extra links read.

Imported at DAG parse time: the hook (and with it the client) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from immuta_provider.links import LINK_XCOM_KEY, link_info

if TYPE_CHECKING:
    from immuta_provider.hooks.immuta import ImmutaHook


class ImmutaMixin:
    """Mixed into the Immuta operators and sensors, after Airflow's base class (first, Airflow
    would give each operator BaseOperator's __init__ signature and mapped tasks None inlets).

    The class using it sets ``immuta_conn_id`` and ``connection_key`` in its ``__init__``.
    """

    immuta_conn_id: str
    connection_key: str
    _hook: ImmutaHook | None = None
    _pushed_link: dict[str, Any] | None = None

    log: Any  # Airflow's task logger (its type differs between Airflow versions)

    @property
    def hook(self) -> ImmutaHook:
        """The hook of ``immuta_conn_id`` (built on first use, then kept)."""
        if self._hook is None:
            from immuta_provider.hooks.immuta import ImmutaHook

            self._hook = ImmutaHook(immuta_conn_id=self.immuta_conn_id)
        return self._hook

    def log_connection_page(self) -> None:
        """Log the connection's Immuta page, so the task log leads to it."""
        self.log.info(
            "Immuta connection %r: %s",
            self.connection_key,
            self.hook.connection_url(self.connection_key),
        )

    def push_immuta_link(
        self, context: Any, immuta_task_id: str | None = None, run_id: str | None = None
    ) -> None:
        """Store what the extra links need (no secret) in the task's XCom, once per change (a
        sensor pokes many times; the links only change when the run becomes known)."""
        info = link_info(self.hook.base_url, self.connection_key, immuta_task_id, run_id)
        if info == self._pushed_link:
            return
        context["ti"].xcom_push(key=LINK_XCOM_KEY, value=info)
        self._pushed_link = info
