"""``ImmutaConnectionHealthSensor``: wait until an Immuta connection is ACTIVE and healthy.

Imported at every DAG parse: the hook and the client are imported when the sensor runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from immuta_provider._compat import BaseSensorOperator, PokeReturnValue
from immuta_provider._connections import component_lines, health_summary
from immuta_provider._immuta_mixin import ImmutaMixin
from immuta_provider._task_runs import is_transient
from immuta_provider.client.vocabulary import ConnectionState
from immuta_provider.links import ImmutaConnectionLink

if TYPE_CHECKING:
    pass


class ImmutaConnectionHealthSensor(BaseSensorOperator, ImmutaMixin):
    """Wait until an Immuta connection is ``ACTIVE`` and each of its enabled components is
    ``HEALTHY``.

    Each poke reads the connection's recorded health; with ``validate=True`` it asks Immuta to
    validate the connection first (a real check of the credentials and components, so mind
    ``poke_interval``). Works in ``poke`` and ``reschedule`` mode. A transient error (timeout,
    429, 5xx) is logged and the next poke tries again; ``timeout`` bounds the wait as for any
    sensor. A connection that does not exist fails the sensor at once.

    Returns (as XCom) the connection's health, the same dict as
    :class:`~immuta_provider.operators.connections.ImmutaValidateConnectionOperator`:
    ``connection_key``, ``technology``, ``state``, ``healthy``, ``components`` and ``problems``.

    :param connection_key: The Immuta connection to watch (templated).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param validate: Validate the connection on each poke instead of reading its last
        recorded health.
    """

    template_fields = ("connection_key",)
    ui_color = "#e8e4f7"
    operator_extra_links = (ImmutaConnectionLink(),)

    def __init__(
        self,
        *,
        connection_key: str,
        immuta_conn_id: str = "immuta_default",
        validate: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection_key = connection_key
        self.immuta_conn_id = immuta_conn_id
        self.validate = validate
        self._last_report: str | None = None

    def execute(self, context: Any) -> Any:
        """Log the connection's Immuta page, store the link, then poke as usual."""
        self.log_connection_page()
        self.push_immuta_link(context)
        return super().execute(context)

    def poke(self, context: Any) -> PokeReturnValue | bool:
        """Read (or validate) the connection once: done with its health, or not yet."""
        client = self.hook.get_client()
        try:
            if self.validate:
                connection = client.validate_connection(self.connection_key)
            else:
                connection = client.get_connection(self.connection_key)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.log.warning(
                "Could not read Immuta connection %r this time, trying again at the next poke: %s",
                self.connection_key,
                exc,
            )
            return False
        summary = health_summary(connection)
        ready = summary["healthy"] and summary["state"] == ConnectionState.ACTIVE
        self._report(summary, ready)
        if not ready:
            return False
        return PokeReturnValue(is_done=True, xcom_value=summary)

    def _report(self, summary: dict[str, Any], ready: bool) -> None:
        """Log the connection's state and health when they change (once per poke otherwise)."""
        report = f"state {summary['state'] or 'not reported'}; " + "; ".join(
            component_lines(summary)
        )
        if report == self._last_report:
            return
        self._last_report = report
        if ready:
            self.log.info(
                "Immuta connection %r is ACTIVE and healthy: %s", self.connection_key, report
            )
        else:
            self.log.info(
                "Immuta connection %r is not ready yet (waiting for state ACTIVE and every "
                "enabled component HEALTHY): %s",
                self.connection_key,
                report,
            )
