"""Operators that manage Immuta connections: validate, activate, deactivate, create, update, delete.

Each one is idempotent where that makes sense: activating an active connection, deactivating an
inactive one, or creating a connection that already exists with the same configuration succeeds
(and says so in the log) instead of failing on Immuta's 409.

DAG files import this module at every parse, so it imports only Airflow's authoring classes and
our own light modules; the hook and the HTTP client are imported when a task runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from immuta_provider._compat import AirflowException, conf, mask_secret
from immuta_provider._connections import (
    component_lines,
    configuration_differences,
    health_summary,
    secret_values,
    state_text,
)
from immuta_provider._task_runs import status_text
from immuta_provider.client.errors import ImmutaConflictError, ImmutaNotFoundError
from immuta_provider.client.vocabulary import (
    ACTIVATED_STATES,
    ConnectionState,
    TaskType,
)
from immuta_provider.links import ImmutaConnectionLink, ImmutaTaskRunLink
from immuta_provider.operators._arguments import json_object
from immuta_provider.operators._base import (
    ImmutaBaseOperator,
    ImmutaTaskRunWaitingOperator,
)

if TYPE_CHECKING:
    import jinja2

    from immuta_provider.client import ImmutaClient
    from immuta_provider.client.models import Connection, Task


def _dump(connection: Connection) -> dict[str, Any]:
    """A connection as Immuta returns it (wire names, secrets ``"[REDACTED]"``), JSON-safe."""
    return connection.model_dump(mode="json", by_alias=True)


def _mask_secrets(value: Any) -> None:
    """Register every secret in a body or change set with Airflow's log masker."""
    for secret in secret_values(value):
        mask_secret(secret)


class ImmutaValidateConnectionOperator(ImmutaBaseOperator):
    """Validate an Immuta connection: Immuta checks each enabled component and records its health.

    The log has one line per component (client, policy, audit) with its status and Immuta's
    message. The task fails when an enabled component is not ``HEALTHY``, unless
    ``fail_on_unhealthy=False``; then it succeeds and the returned health says what is wrong
    (handy for branching, see the ``immuta_validate_then_sync`` example DAG).

    Returns (as XCom) the connection's health: ``connection_key``, ``technology``, ``state``,
    ``healthy`` (bool), ``components`` (per component: ``enabled``, ``status``, ``message``,
    ``checked_at``) and ``problems`` (one line per enabled component that is not healthy).

    :param connection_key: The Immuta connection to validate (templated).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param fail_on_unhealthy: Fail the task if an enabled component is not healthy. With
        ``False`` the task succeeds and returns the health whatever it is.
    """

    template_fields = ("connection_key",)
    operator_extra_links = (ImmutaConnectionLink(),)

    def __init__(
        self,
        *,
        connection_key: str,
        immuta_conn_id: str = "immuta_default",
        fail_on_unhealthy: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection_key = connection_key
        self.immuta_conn_id = immuta_conn_id
        self.fail_on_unhealthy = fail_on_unhealthy

    def execute(self, context: Any) -> dict[str, Any]:
        """Validate the connection, log each component's health, return the health."""
        client = self.hook.get_client()
        self.push_immuta_link(context)
        connection = client.validate_connection(self.connection_key)
        summary = health_summary(connection)
        self.log.info(
            "Validated Immuta connection %r (%s, state %s):\n  %s",
            self.connection_key,
            summary["technology"] or "technology not reported",
            summary["state"] or "not reported",
            "\n  ".join(component_lines(summary)),
        )
        if summary["healthy"]:
            self.log.info("Every enabled component of %r is healthy.", self.connection_key)
            return summary
        message = (
            f"Immuta connection {self.connection_key!r} is unhealthy: "
            f"{'; '.join(summary['problems'])}. See {self.hook.connection_url(self.connection_key)}"
        )
        if self.fail_on_unhealthy:
            self.log.error("%s", message)
            raise AirflowException(
                message + " (with fail_on_unhealthy=False the task returns the health instead)."
            )
        self.log.warning("%s (fail_on_unhealthy=False: not failing the task).", message)
        return summary


class _ConnectionStateOperator(ImmutaBaseOperator):
    """Switch a connection on or off; a connection already there is a success."""

    template_fields = ("connection_key",)
    operator_extra_links = (ImmutaConnectionLink(),)
    _verb: str
    _done: str
    _client_method: str
    """The client method that changes the state (it takes the connection key)."""
    _target_states: tuple[str, ...]
    """States in which there is nothing to do."""

    def __init__(
        self, *, connection_key: str, immuta_conn_id: str = "immuta_default", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.connection_key = connection_key
        self.immuta_conn_id = immuta_conn_id

    def _note_done(self, state: str) -> None:
        """Log that the connection already is where it should be."""
        self.log.info(
            "Immuta connection %r is already %s; nothing to %s.",
            self.connection_key,
            state,
            self._verb,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        """Change the connection's state unless it is already where it should be."""

        client = self.hook.get_client()
        self.push_immuta_link(context)
        previous = state_text(client.get_connection(self.connection_key).state)
        if previous in self._target_states:
            self._note_done(previous)
            return self._result(previous, previous, changed=False)
        try:
            change: Callable[[str], Connection] = getattr(client, self._client_method)
            connection = change(self.connection_key)
        except ImmutaConflictError as exc:
            # Someone else may have changed the state between our read and our request.
            current = state_text(client.get_connection(self.connection_key).state)
            if current in self._target_states:
                self.log.info(
                    "Immuta refused to %s connection %r (409: %s), but it is %s now (changed "
                    "meanwhile, outside this task): nothing left to do.",
                    self._verb,
                    self.connection_key,
                    exc.message,
                    current,
                )
                return self._result(previous, current, changed=False)
            raise AirflowException(
                f"Could not {self._verb} Immuta connection {self.connection_key!r} (state "
                f"{current}): {exc}"
            ) from exc
        state = state_text(connection.state)
        self.log.info(
            "%s Immuta connection %r: %s -> %s.",
            self._done,
            self.connection_key,
            previous,
            state,
        )
        return self._result(previous, state, changed=True)

    def _result(self, previous: str | None, state: str | None, *, changed: bool) -> dict[str, Any]:
        return {
            "connection_key": self.connection_key,
            "previous_state": previous,
            "state": state,
            "changed": changed,
        }


class ImmutaActivateConnectionOperator(_ConnectionStateOperator):
    """Activate an ``INACTIVE`` Immuta connection.

    A connection that is already on (``ACTIVE``, or ``UNHEALTHY``: on but failing validation) is a
    success with a log line, not a failure; for an ``UNHEALTHY`` one the log also suggests
    validating it. If Immuta answers 409 because the state changed meanwhile, the operator reads
    the state again and succeeds if the connection is on.

    Returns (as XCom) ``connection_key``, ``previous_state``, ``state`` and ``changed`` (whether
    this task changed the state).

    :param connection_key: The Immuta connection to activate (templated).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    """

    _verb = "activate"
    _done = "Activated"
    _client_method = "activate_connection"
    _target_states = ACTIVATED_STATES

    def _note_done(self, state: str) -> None:
        super()._note_done(state)
        if state == ConnectionState.UNHEALTHY:
            self.log.warning(
                "Immuta connection %r is on but UNHEALTHY: run ImmutaValidateConnectionOperator "
                "to see which component fails.",
                self.connection_key,
            )


class ImmutaDeactivateConnectionOperator(_ConnectionStateOperator):
    """Deactivate an ``ACTIVE`` or ``UNHEALTHY`` Immuta connection.

    A connection that is already ``INACTIVE`` is a success with a log line, not a failure. If
    Immuta answers 409 because the state changed meanwhile, the operator reads the state again
    and succeeds if the connection is inactive.

    Returns (as XCom) ``connection_key``, ``previous_state``, ``state`` and ``changed``.

    :param connection_key: The Immuta connection to deactivate (templated).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    """

    _verb = "deactivate"
    _done = "Deactivated"
    _client_method = "deactivate_connection"
    _target_states = (ConnectionState.INACTIVE.value,)


class ImmutaCreateConnectionOperator(ImmutaBaseOperator):
    """Create an Immuta connection from a body given as a dict or as a JSON file.

    The body uses Immuta's wire names: ``connectionKey``, ``technology``,
    ``clientConfiguration`` and optionally ``policyConfiguration`` / ``auditConfiguration``.
    Keep secrets out of the DAG file: template them from an Airflow connection or variable, e.g.
    ``"password": "{{ conn.snowflake_prod.password }}"``. Values under secret-looking keys
    (``password``, ``token``, ``privateKey``...) are masked in the task log and redacted in the
    rendered-template view.

    If a connection with that key already exists, the operator compares it with the body:
    the same configuration is a success (logged, nothing sent); a different one fails, listing
    the differences. Only what the body sets is compared (fields it leaves out are Immuta's
    defaults), server-set fields such as ``state`` or ``createdAt`` are ignored, and a
    ``"[REDACTED]"`` value matches anything (Immuta never returns secrets, so they cannot be
    compared).

    Returns (as XCom) the connection as Immuta returns it (wire names, secrets ``"[REDACTED]"``).

    :param body: The create body (templated): a dict, or JSON text (e.g. rendered from XCom).
    :param body_file: Instead of ``body``, the path of a ``.json`` file holding the body,
        relative to the DAG's folder or a ``template_searchpath`` folder (templated: the file's
        content is rendered with Jinja, like any file named in a template field with
        ``template_ext=(".json",)``).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    """

    template_fields = ("body", "body_file")
    template_ext: Sequence[str] = (".json",)
    template_fields_renderers = {"body": "json", "body_file": "json"}
    operator_extra_links = (ImmutaConnectionLink(),)

    def __init__(
        self,
        *,
        body: Mapping[str, Any] | str | None = None,
        body_file: str | None = None,
        immuta_conn_id: str = "immuta_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (body is None) == (body_file is None):
            raise ValueError(
                "Give exactly one of body (a dict with connectionKey, technology, "
                "clientConfiguration...) or body_file (the path of a .json file holding it)."
            )
        if body_file is not None and not (
            isinstance(body_file, str) and body_file.endswith(tuple(self.template_ext))
        ):
            raise ValueError(
                f"body_file must be the path of a .json file, relative to the DAG folder or a "
                f"template_searchpath folder; got {body_file!r}."
            )
        self.body: Mapping[str, Any] | str | None = body
        self.body_file: Mapping[str, Any] | str | None = body_file
        self._body_file_path = body_file
        self.immuta_conn_id = immuta_conn_id
        self.connection_key = ""

    # -- templating -----------------------------------------------------------------------------

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render as Airflow does, except that a ``.json`` string *inside* the body is a value.

        ``template_ext`` would otherwise make Airflow load any string ending in ``.json`` as a
        template file, at any depth, so a configuration value such as ``"keyFile": "sa.json"``
        would break the rendering. Only the ``body_file`` (or ``body``) field itself is a file.
        """
        if isinstance(content, str):
            return super().render_template(content, context, jinja_env, seen_oids)
        extensions = self.template_ext
        self.template_ext = ()
        try:
            return super().render_template(content, context, jinja_env, seen_oids)
        finally:
            self.template_ext = extensions

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Any,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        # Turn the rendered JSON text into a dict right away, so the rendered-template view
        # stores an object whose secret-looking keys Airflow redacts, not a string it cannot.
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self:
            self._parse_rendered_body()

    def _parse_rendered_body(self) -> dict[str, Any]:
        if self.body_file is not None:
            parsed = json_object(self.body_file, "body_file", source=self._body_file_path)
            self.body_file = parsed
        else:
            parsed = json_object(self.body, "body")
            self.body = parsed
        _mask_secrets(parsed)
        return parsed

    # -- running --------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        """Create the connection, or accept an existing one with the same configuration."""

        body = self._parse_rendered_body()
        key = body.get("connectionKey")
        if not isinstance(key, str) or not key:
            raise ValueError(
                "The connection body has no 'connectionKey' (Immuta's wire name for the key of "
                'the new connection); add it, e.g. {"connectionKey": "snowflake-prod", ...}.'
            )
        self.connection_key = key
        client = self.hook.get_client()
        self.push_immuta_link(context)
        try:
            existing = client.get_connection(key)
        except ImmutaNotFoundError:
            try:
                created = client.create_connection(body)
            except ImmutaConflictError:
                # Created by someone else between our read and our request.
                existing = client.get_connection(key)
            else:
                self.log.info(
                    "Created Immuta connection %r (%s), state %s: %s",
                    key,
                    created.technology,
                    state_text(created.state),
                    self.hook.connection_url(key),
                )
                return _dump(created)
        return self._accept_existing(body, existing)

    def _accept_existing(self, body: Mapping[str, Any], existing: Connection) -> dict[str, Any]:
        key = existing.connection_key
        differences = configuration_differences(
            body, existing.model_dump(mode="json", by_alias=True)
        )
        if differences:
            raise AirflowException(
                f"Immuta connection {key!r} already exists with a different configuration:\n  "
                + "\n  ".join(differences)
                + "\nChange it with ImmutaUpdateConnectionOperator, or delete it first, or use "
                "another connectionKey. (Secrets read '[REDACTED]' in Immuta and are not compared.)"
            )
        self.log.info(
            "Immuta connection %r already exists with the same configuration (state %s); "
            "nothing to create. Secrets cannot be compared (Immuta returns them as "
            "'[REDACTED]') and were not.",
            key,
            state_text(existing.state),
        )
        return _dump(existing)


class ImmutaUpdateConnectionOperator(ImmutaBaseOperator):
    """Change part of an Immuta connection's configuration (Immuta's PATCH).

    ``changes`` uses wire names, e.g. ``{"clientConfiguration": {"warehouse": "NEW_WH"}}``.
    Values equal to ``"[REDACTED]"`` are not sent (that is the placeholder Immuta returns, not
    the secret). Immuta updates only ``ACTIVE`` or ``UNHEALTHY`` connections; an ``INACTIVE`` one
    fails with a message saying to activate it first.

    With ``dry_run=True`` Immuta checks the changes and returns the connection as it would be,
    without saving anything.

    Returns (as XCom) the connection as Immuta returns it after the update (wire names, secrets
    ``"[REDACTED]"``).

    :param connection_key: The Immuta connection to change (templated).
    :param changes: The fields to change (templated): a dict, or JSON text.
    :param dry_run: Only check the changes; save nothing.
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    """

    template_fields = ("connection_key", "changes")
    template_fields_renderers = {"changes": "json"}
    operator_extra_links = (ImmutaConnectionLink(),)

    def __init__(
        self,
        *,
        connection_key: str,
        changes: Mapping[str, Any] | str,
        dry_run: bool = False,
        immuta_conn_id: str = "immuta_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection_key = connection_key
        self.changes = changes
        # Not self.dry_run: BaseOperator.dry_run() is Airflow's own (render-only) dry run.
        self.dry_run_changes = dry_run
        self.immuta_conn_id = immuta_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Send the changes (or check them, with ``dry_run``) and return the connection."""

        changes = json_object(self.changes, "changes")
        _mask_secrets(changes)
        if not changes:
            raise ValueError(
                "changes is empty: give the fields to change, e.g. "
                '{"clientConfiguration": {"warehouse": "NEW_WH"}}.'
            )
        client = self.hook.get_client()
        self.push_immuta_link(context)
        try:
            connection = client.update_connection(
                self.connection_key, changes, dry_run=self.dry_run_changes
            )
        except ImmutaConflictError as exc:
            state = state_text(client.get_connection(self.connection_key).state)
            advice = (
                "Only an ACTIVE or UNHEALTHY connection can be updated: activate it first "
                "(ImmutaActivateConnectionOperator)."
                if state == ConnectionState.INACTIVE
                else "Immuta's message says what conflicts; retry once that is resolved."
            )
            raise AirflowException(
                f"Immuta refused to update connection {self.connection_key!r}, which is {state}: "
                f"{exc}. {advice}"
            ) from exc
        fields = ", ".join(sorted(changes))
        if self.dry_run_changes:
            self.log.info(
                "Dry run: Immuta accepted the changes to %s of connection %r; nothing was saved. "
                "The connection would be in state %s.",
                fields,
                self.connection_key,
                state_text(connection.state),
            )
        else:
            self.log.info(
                "Updated %s of Immuta connection %r; its state is now %s.",
                fields,
                self.connection_key,
                state_text(connection.state),
            )
        return _dump(connection)


class ImmutaDeleteConnectionOperator(ImmutaTaskRunWaitingOperator):
    """Delete an Immuta connection and its data objects, and by default wait until it is gone.

    Immuta deletes only ``INACTIVE`` connections. With ``deactivate_first=True`` the operator
    deactivates the connection first (if it is not inactive already); without it, deleting an
    active connection fails with a message saying so. The deletion is a ``CONNECTION_DELETE``
    task in Immuta; the operator waits for its run exactly as
    :class:`~immuta_provider.operators.immuta.ImmutaDataObjectSyncOperator` waits for a sync (in
    a worker, or deferred to the triggerer), with the same ``poll_interval`` / ``timeout``
    semantics. If a deletion of the connection is already running (say, started by an earlier
    try of this task), the operator follows it instead of failing.

    Returns (as XCom) the run summary of the deletion task, as the sync operator does:
    ``connection_key``, ``immuta_task_id``, ``run_id``, ``status``, timestamps and
    ``duration_seconds``.

    :param connection_key: The Immuta connection to delete (templated).
    :param deactivate_first: Deactivate the connection before deleting it.
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param wait_for_completion: Wait for the deletion to end. If ``False``, return as soon as
        Immuta accepted it.
    :param deferrable: Wait in the triggerer instead of a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: Seconds between two status checks.
    :param timeout: Seconds to wait for the deletion before failing, or ``None`` to wait as long
        as it takes; an absolute deadline from the moment the task starts waiting.
    :param cancel_on_kill: Cancel the deletion in Immuta when the task is killed or times out.
        Off by default: a half-done deletion is rarely what anyone wants.
    """

    template_fields = ("connection_key",)
    operator_extra_links = (ImmutaConnectionLink(), ImmutaTaskRunLink())

    def __init__(
        self,
        *,
        connection_key: str,
        deactivate_first: bool = False,
        immuta_conn_id: str = "immuta_default",
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float | None = None,
        cancel_on_kill: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_waiting_options(
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            cancel_on_kill=cancel_on_kill,
        )
        self.connection_key = connection_key
        self.deactivate_first = deactivate_first
        self.immuta_conn_id = immuta_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Deactivate (optionally), start the deletion, and wait for it as configured."""
        client = self.hook.get_client()
        self.log_connection_page()
        self._push_link(context)  # the connection link, even if the deletion is refused
        if self.deactivate_first:
            self._deactivate(client)
        return self._follow_started_task(context, client, self._start_deletion(client))

    def _deactivate(self, client: ImmutaClient) -> None:

        state = state_text(client.get_connection(self.connection_key).state)
        if state == ConnectionState.INACTIVE:
            self.log.info(
                "Immuta connection %r is already INACTIVE (deactivate_first=True: nothing to do).",
                self.connection_key,
            )
            return
        try:
            client.deactivate_connection(self.connection_key)
        except ImmutaConflictError:
            if (
                state_text(client.get_connection(self.connection_key).state)
                != ConnectionState.INACTIVE
            ):
                raise
        self.log.info(
            "Deactivated Immuta connection %r (%s -> INACTIVE) before deleting it.",
            self.connection_key,
            state,
        )

    def _start_deletion(self, client: ImmutaClient) -> str:

        try:
            reference = client.delete_connection(self.connection_key)
        except ImmutaConflictError as exc:
            running = self._running_deletion(client)
            if running is not None:
                self.log.info(
                    "A deletion of Immuta connection %r is already %s (Immuta task %s); "
                    "following it instead of starting another one.",
                    self.connection_key,
                    status_text(running.status),
                    running.task_id,
                )
                return running.task_id
            state = state_text(client.get_connection(self.connection_key).state)
            if state in ACTIVATED_STATES:
                raise AirflowException(
                    f"Immuta refused to delete connection {self.connection_key!r}: it is {state}, "
                    f"and only an INACTIVE connection can be deleted (Immuta: {exc.message}). "
                    "Deactivate it first: set deactivate_first=True on this operator, or run "
                    "ImmutaDeactivateConnectionOperator before it."
                ) from exc
            raise AirflowException(
                f"Immuta refused to delete connection {self.connection_key!r} (state {state}): "
                f"{exc}"
            ) from exc
        self.log.info(
            "Immuta accepted the deletion of connection %r: Immuta task %s.",
            self.connection_key,
            reference.task_id,
        )
        return reference.task_id

    def _running_deletion(self, client: ImmutaClient) -> Task | None:
        for status in self.hook.run_statuses.attachable:
            for task in client.list_tasks(
                self.connection_key, type=TaskType.CONNECTION_DELETE, status=status
            ):
                return task
        return None
