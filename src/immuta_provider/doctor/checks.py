"""The doctor's checks: sample a tenant read-only (``probe.py``), compare what it answers with
what the provider assumes, and suggest the connection extras that make them fit.

Each check adds one :class:`~immuta_provider.doctor.report.Check`. ``fail`` is kept for what the
provider relies on (API-NOTES.md, *Meeting a real tenant*): the tenant is reachable and accepts
the key, list answers can be read and paged, the resources carry their required fields, and every
status a run *ends* with is a known success or failure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from immuta_provider.client import (
    Connection,
    DataObject,
    ImmutaAPIError,
    ImmutaClient,
    ImmutaModel,
    ImmutaResponseError,
    ImmutaTransportError,
    Task,
    TaskRun,
)
from immuta_provider.client.envelopes import (
    EnvelopeMismatch,
    ListEnvelope,
    documented_shape,
    read_list_envelope,
)
from immuta_provider.client.vocabulary import (
    ACTIVE_STATUSES,
    AUTH_METHODS,
    FAILURE_STATUSES,
    SUCCESS_STATUSES,
    ConnectionState,
    TaskTrigger,
    TaskType,
)
from immuta_provider.doctor.probe import Outcome, Probe
from immuta_provider.doctor.report import FAIL, OK, WARN, Check, Report

SAMPLE_CONNECTIONS = 10
"""Connections inspected when no ``--connection-key`` is given (the first ones listed)."""
SAMPLE_TASKS = 5
"""Tasks per connection whose runs are read."""
SAMPLE_PAGE = 20
AUTH_CANDIDATES = ("exchange", "bearer-key", "raw-key")
"""Each way of using the API key the doctor tries (``auto`` is one of them, or a fallback)."""
DEFAULT_AUTH_METHOD = AUTH_METHODS[0]


@dataclass(frozen=True)
class StatusSets:
    """The run status names the provider is configured with (connection extras
    ``success_statuses``, ``failure_statuses``, ``active_statuses``)."""

    success: tuple[str, ...] = SUCCESS_STATUSES
    failure: tuple[str, ...] = FAILURE_STATUSES
    active: tuple[str, ...] = ACTIVE_STATUSES

    @property
    def known(self) -> frozenset[str]:
        """Every configured name."""
        return frozenset(self.success + self.failure + self.active)


@dataclass(frozen=True)
class Target:
    """What the doctor examines, and how the provider is configured for it.

    Attributes:
        base_url: the tenant URL.
        api_key: the API key (never shown: not in ``repr``, never in the report).
        source: where the settings came from, for the report (``--url``, an Airflow connection).
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        timeout: seconds per request.
        client_options: further client settings (``auth_method``).
        statuses: the configured status names.
        connection_key: inspect this Immuta connection only (else the first few listed).
    """

    base_url: str
    api_key: str = field(repr=False)
    source: str = "--url"
    verify: bool | str = True
    timeout: float = 30.0
    client_options: dict[str, Any] = field(default_factory=dict)
    statuses: StatusSets = field(default_factory=StatusSets)
    connection_key: str | None = None


def describe(error: BaseException) -> str:
    """An error as the report shows it (the client's messages never hold the key)."""
    return str(error) or type(error).__name__


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


def _wire_names(model: type[ImmutaModel]) -> tuple[list[str], list[str]]:
    """(required, all) wire names of a model's fields."""
    required, every = [], []
    for name, info in model.model_fields.items():
        wire = info.alias or name
        every.append(wire)
        if info.is_required():
            required.append(wire)
    return required, every


def _items(outcome: Outcome, items_key: str) -> list[dict[str, Any]]:
    """The raw items of a list answer, read by the envelope rules ([] if unreadable)."""
    if outcome.answer is None or outcome.answer.status_code >= 300:
        return []
    try:
        envelope = read_list_envelope(outcome.answer.body, items_key)
    except EnvelopeMismatch:
        return []
    return [item for item in envelope.items if isinstance(item, dict)]


def _refused(error: Exception | None) -> bool:
    """Whether an error says the credentials were refused (by the API or by the exchange)."""
    if getattr(error, "auth_step", None) == "exchange":
        return True
    return isinstance(error, ImmutaAPIError) and error.status_code in (401, 403)


def _short(error: Exception | None) -> str:
    if isinstance(error, ImmutaAPIError):
        where = " at the exchange" if getattr(error, "auth_step", None) == "exchange" else ""
        return f"HTTP {error.status_code}{where}"
    return type(error).__name__ if error is not None else "no error"


def _ids(items: Iterable[dict[str, Any]], wire: str) -> list[str]:
    return [item[wire] for item in items if isinstance(item.get(wire), str)]


def _unique(items: Iterable[dict[str, Any]], wire: str) -> list[dict[str, Any]]:
    """One item per id (a resource read from a listing and by its own GET counts once)."""
    return list({str(item.get(wire)): item for item in items}.values())


def _keys(connections: Iterable[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(_ids(connections, "connectionKey")))


def _object(outcome: Outcome) -> dict[str, Any] | None:
    if outcome.answer is None or outcome.answer.status_code >= 300:
        return None
    body = outcome.answer.body
    return body if isinstance(body, dict) else None


class Doctor:
    """Runs every check against one :class:`Target` and builds the :class:`Report`."""

    def __init__(self, target: Target, *, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self._transport = transport
        self.report = Report(target=f"{target.base_url} ({target.source})")
        self.connections: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.data_objects: list[dict[str, Any]] = []
        self._configured_error: Exception | None = None

    def _probe(self, **client_options: Any) -> Probe:
        return Probe(
            self.target.base_url,
            self.target.api_key,
            verify=self.target.verify,
            timeout=self.target.timeout,
            transport=self._transport,
            **client_options,
        )

    def run(self) -> Report:
        """Sample the tenant and run every check; never raises for what the tenant answers."""
        options = dict(self.target.client_options)
        with self._probe(**options) as probe:
            reached = self._reach(probe)
        if reached is None:
            return self.report
        working = self._auth_methods(configured_works=reached)
        if working is None:
            return self.report
        if not reached:  # go on with a method that works, to check the rest
            options["auth_method"] = working
        with self._probe(**options) as probe:
            self._sample(probe)
        self._check_fields()
        self._check_vocabulary()
        return self.report

    def _add(self, name: str, result: str, detail: str, advice: str = "") -> None:
        self.report.add(Check(name, result, detail, advice))  # type: ignore[arg-type]

    # --- reachability, TLS, authentication ---------------------------------------------------

    def _tls(self) -> None:
        parts = urlsplit(self.target.base_url)
        if parts.scheme == "https":
            trust = (
                f"the CA bundle {self.target.verify}"
                if isinstance(self.target.verify, str)
                else "the system trust store"
            )
            if self.target.verify is False:
                self._add(
                    "TLS",
                    WARN,
                    "HTTPS without certificate verification (verify_ssl is false)",
                    "set verify_ssl back to true, with ca_bundle if the tenant's CA is private",
                )
            else:
                self._add("TLS", OK, f"HTTPS; the certificate is trusted by {trust}")
            return
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            self._add("TLS", OK, "plain HTTP on a loopback address (a local emulator or tunnel)")
        else:
            self._add(
                "TLS",
                WARN,
                "plain HTTP: the API key travels unencrypted",
                "use the tenant's https:// URL",
            )

    def _reach(self, probe: Probe) -> bool | None:
        """Reachability and TLS: one listing call with the configured authentication.

        Returns whether the configured authentication works, ``None`` when there is nothing
        more to check (no answer, or not the Connections API)."""
        outcome = probe.page(ImmutaClient.list_connections, page_size=1)
        error = outcome.error
        if isinstance(error, ImmutaTransportError):
            text = describe(error)
            advice = "check the URL, and that this host can reach it (proxy, firewall, DNS)"
            if "certificate" in text.lower():
                advice = (
                    "the tenant's certificate is not trusted here: pass --ca-bundle PATH "
                    "(connection extra ca_bundle) with the CA that signed it"
                )
            self._add("reachable", FAIL, text, advice)
            return None
        answered = outcome.answer.status_code if outcome.answer else "an answer"
        self._add("reachable", OK, f"{self.target.base_url} answered HTTP {answered}")
        self._tls()
        if _refused(error):
            self._configured_error = error
            return False
        if isinstance(error, ImmutaAPIError):
            advice = "see the message"
            if error.status_code == 404:
                advice = (
                    "the URL answers but has no /api/connections: check it is the tenant's base "
                    "URL (with the path prefix, if Immuta sits behind one)"
                )
            self._add("connections API", FAIL, describe(error), advice)
            return None
        return True

    def _auth_methods(self, *, configured_works: bool) -> str | None:
        """Try each way of using the key; returns one that works (``None``: none does)."""
        configured = str(self.target.client_options.get("auth_method", DEFAULT_AUTH_METHOD))
        works, refused = [], []
        for method in AUTH_CANDIDATES:
            with self._probe(**{**self.target.client_options, "auth_method": method}) as probe:
                error = probe.page(ImmutaClient.list_connections, page_size=1).error
            if error is None:
                works.append(method)
            else:
                refused.append(f"{method} ({_short(error)})")
        seen = f"works: {_names(works)}; refused: {_names(refused)}"
        if configured_works:
            self._add(
                "authentication", OK, f"the configured auth_method {configured!r} works; {seen}"
            )
            return configured
        if works:
            self.report.suggested_extras["auth_method"] = works[0]
            self._add(
                "authentication",
                FAIL,
                f"the configured auth_method {configured!r} is refused "
                f"({_short(self._configured_error)}); {seen}",
                f"set the connection extra auth_method to {works[0]!r} (suggested below)",
            )
            return works[0]
        self._add(
            "authentication",
            FAIL,
            f"no way of using the API key works: {_short(self._configured_error)}; {seen}",
            "check the API key (Immuta profile > API Keys) and that its user may list connections",
        )
        return None

    # --- listings ------------------------------------------------------------------------------

    def _envelope(
        self,
        probe: Probe,
        items_key: str,
        method: Callable[..., Any],
        *args: Any,
    ) -> None:
        """One listing's envelope and cursor: page[limit]=1, then the next page or a bigger one."""
        name = f"list envelope: {method.__name__}"
        first = probe.page(method, *args, page_size=1)
        if first.error is not None and not isinstance(first.error, ImmutaResponseError):
            self._add(name, FAIL, describe(first.error), "see the message")
            return
        body = first.answer.body if first.answer else None
        try:
            envelope = read_list_envelope(body, items_key)
        except EnvelopeMismatch as mismatch:
            self._add(
                name,
                FAIL,
                f"{mismatch.problem}; top-level keys seen: {_names(mismatch.keys)}",
                f"the provider cannot read this list (expected {documented_shape(items_key)} or "
                "one list-valued key): report these keys to the provider's maintainers",
            )
            return
        result, notes = self._cursor(probe, envelope, items_key, method, *args)
        where = (
            f"items under {envelope.items_key!r}, next cursor at "
            f"{envelope.cursor_at or '(none on this page)'}"
        )
        advice = ""
        if result == FAIL:
            advice = (
                "the provider would only ever see the first page: report where this tenant "
                "puts its next-page cursor"
            )
        elif envelope.differences:
            result = WARN
            advice = (
                "nothing to set: the client reads this envelope (and logs one warning per "
                "process); tell us, so the documented shape follows the real API"
            )
        detail = f"{where}; {notes}"
        if envelope.differences:
            detail += f"; differs from the documented {documented_shape(items_key)}"
        self._add(name, result, detail, advice)

    def _cursor(
        self,
        probe: Probe,
        envelope: ListEnvelope,
        items_key: str,
        method: Callable[..., Any],
        *args: Any,
    ) -> tuple[str, str]:
        if envelope.next_cursor is not None:
            cursor = envelope.next_cursor
            second = probe.page(method, *args, page_size=1, cursor=cursor)
            if second.error is not None:
                return FAIL, f"following the next cursor failed: {describe(second.error)}"
            if second.value.next_cursor == cursor:
                return FAIL, "the next page repeats the cursor it was given"
            return OK, "the next cursor was followed to a second page"
        if len(envelope.items) == 0:
            return OK, "no items, so paging could not be exercised"
        if len(_items(probe.page(method, *args, page_size=2), items_key)) > 1:
            return FAIL, (
                "page[limit]=1 answered one item and no next cursor (neither page.nextCursor "
                "nor a top-level nextCursor) although there are more"
            )
        return OK, "one item only, so paging could not be exercised"

    def _sample(self, probe: Probe) -> None:
        """Read connections, their tasks and runs and some data objects; check each listing."""
        self._envelope(probe, "connections", ImmutaClient.list_connections)
        key = self.target.connection_key
        if key is not None:
            got = probe.call(ImmutaClient.get_connection, key)
            if got.error is not None:
                self._add(f"connection {key}", FAIL, describe(got.error), "check --connection-key")
                return
            found = _object(got)
            self.connections = [found] if found else []
        else:
            listed = probe.page(ImmutaClient.list_connections, page_size=SAMPLE_CONNECTIONS)
            self.connections = _items(listed, "connections")[:SAMPLE_CONNECTIONS]
            for listed_key in _keys(self.connections):
                single = _object(probe.call(ImmutaClient.get_connection, listed_key))
                if single is not None:
                    self.connections.append(single)
        keys = _keys(self.connections)
        if not keys:
            self._add(
                "connections",
                WARN,
                "no connection listed, so tasks, runs and data objects could not be checked",
                "run the doctor with an API key that sees at least one connection",
            )
            return
        self._sample_tasks(probe, keys)
        self._sample_data_objects(probe, keys)

    def _sample_tasks(self, probe: Probe, keys: Sequence[str]) -> None:
        with_tasks: tuple[str, str] | None = None
        with_runs: tuple[str, str] | None = None
        for key in keys:
            tasks = _items(probe.page(ImmutaClient.list_tasks, key, page_size=SAMPLE_PAGE), "tasks")
            self.tasks += tasks
            for task_id in _ids(tasks[:SAMPLE_TASKS], "taskId"):
                with_tasks = with_tasks or (key, task_id)
                listed = probe.page(
                    ImmutaClient.list_task_runs, key, task_id, page_size=SAMPLE_PAGE
                )
                runs = _items(listed, "runs")
                self.runs += runs
                if runs and with_runs is None:
                    with_runs = (key, task_id)
                    for run_id in _ids(runs[:1], "runId"):
                        single = _object(
                            probe.call(ImmutaClient.get_task_run, key, task_id, run_id)
                        )
                        self.runs += [single] if single is not None else []
        if with_tasks is not None:
            self._envelope(probe, "tasks", ImmutaClient.list_tasks, with_tasks[0])
            single = _object(probe.call(ImmutaClient.get_task, *with_tasks))
            self.tasks += [single] if single is not None else []
        if with_runs is not None:
            self._envelope(probe, "runs", ImmutaClient.list_task_runs, *with_runs)

    def _sample_data_objects(self, probe: Probe, keys: Sequence[str]) -> None:
        for key in keys:
            found = _items(
                probe.page(ImmutaClient.search_data_objects, key, page_size=5), "dataObjects"
            )
            if not found:
                continue
            self.data_objects += found
            self._envelope(probe, "dataObjects", ImmutaClient.search_data_objects, key)
            roots = [o for o in found if not o.get("parentId")] or found
            for parent in _ids(roots[:1], "id"):
                self.data_objects += _items(
                    probe.page(ImmutaClient.list_data_object_children, key, parent, page_size=5),
                    "dataObjects",
                )
                self._envelope(
                    probe, "dataObjects", ImmutaClient.list_data_object_children, key, parent
                )
            return

    # --- fields --------------------------------------------------------------------------------

    def _check_fields(self) -> None:
        for label, model, items in (
            ("connection", Connection, self.connections),
            ("task", Task, self.tasks),
            ("task run", TaskRun, self.runs),
            ("data object", DataObject, self.data_objects),
        ):
            self._fields(label, model, items)

    def _fields(self, label: str, model: type[ImmutaModel], items: list[dict[str, Any]]) -> None:
        name = f"fields: {label}"
        if not items:
            self._add(name, WARN, f"no {label} seen, so its fields could not be checked")
            return
        required, every = _wire_names(model)
        missing = sorted({wire for item in items for wire in required if wire not in item})
        problems: dict[str, str] = {}
        for item in items:
            try:
                model.model_validate(item)
            except ValidationError as error:
                for detail in error.errors(include_url=False, include_input=False):
                    where = ".".join(str(part) for part in detail["loc"])
                    if detail["type"] != "missing":
                        problems.setdefault(where, detail["msg"])
        unexpected = sorted({key for item in items for key in item} - set(every))
        seen = f"{len(items)} read"
        if missing or problems:
            wrong = [f"{wire}: missing" for wire in missing]
            wrong += [f"{where}: {msg}" for where, msg in sorted(problems.items())]
            self._add(
                name,
                FAIL,
                f"{seen}; the provider cannot read them: {'; '.join(wrong[:5])}",
                f"report this to the provider's maintainers: the {model.__name__} model needs "
                f"{_names(required)}",
            )
        elif unexpected:
            self._add(
                name,
                WARN,
                f"{seen}; required fields present; fields the provider does not know (kept, "
                f"unused): {_names(unexpected[:12])}",
                "nothing to set; tell us if one of them matters (a failure reason, a progress)",
            )
        else:
            self._add(name, OK, f"{seen}; every field is one the provider knows")

    # --- vocabulary ----------------------------------------------------------------------------

    def _check_vocabulary(self) -> None:
        self._words(
            "connection states", self.connections, "state", [s.value for s in ConnectionState]
        )
        self._words("task types", self.tasks, "type", [t.value for t in TaskType])
        self._words("task triggers", self.tasks, "trigger", [t.value for t in TaskTrigger])
        self._statuses()

    def _words(
        self, name: str, items: list[dict[str, Any]], wire: str, known: Sequence[str]
    ) -> None:
        seen = sorted({str(item[wire]) for item in items if item.get(wire) is not None})
        if not items:
            self._add(name, WARN, "nothing seen")
            return
        unknown = [value for value in seen if value not in known]
        detail = f"seen: {_names(seen)}; the provider knows {_names(known)}"
        if unknown:
            self._add(
                name,
                WARN,
                detail,
                f"the provider keeps {_names(unknown)} as plain text; tell us what "
                f"{'it means' if len(unknown) == 1 else 'they mean'}",
            )
        else:
            self._add(name, OK, detail)

    def _statuses(self) -> None:
        sets = self.target.statuses
        runs = _unique(self.runs, "runId")
        if not runs:
            self._add(
                "run statuses",
                WARN,
                "no task run seen, so run statuses could not be checked",
                "start a sync of a connection once (in Immuta or with the provider) and run the "
                "doctor again",
            )
            return
        by_status: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            by_status.setdefault(str(run.get("status")), []).append(run)
        new_success: list[str] = []
        new_failure: list[str] = []
        new_active: list[str] = []
        seen = []
        for status, group in by_status.items():
            ended = any(run.get("completedAt") for run in group)
            failed = any(run.get("error") or run.get("canceledBy") for run in group)
            seen.append(f"{status} ({len(group)}{', ended' if ended else ''})")
            if status in sets.known:
                continue
            if ended:
                (new_failure if failed else new_success).append(status)
            else:
                new_active.append(status)
        task_only = sorted(
            {str(t.get("status")) for t in self.tasks if t.get("status") is not None}
            - sets.known
            - set(by_status)
        )
        detail = (
            f"seen: {', '.join(seen)}; configured: success {_names(sets.success)}, failure "
            f"{_names(sets.failure)}, active {_names(sets.active)}"
        )
        if task_only:
            detail += f"; task statuses never seen on a run: {_names(task_only)}"
        suggested = self.report.suggested_extras
        if new_success:
            suggested["success_statuses"] = list(sets.success) + new_success
        if new_failure:
            suggested["failure_statuses"] = list(sets.failure) + new_failure
        if new_active:
            suggested["active_statuses"] = list(sets.active) + new_active
        if new_success or new_failure:
            unknown = new_success + new_failure
            self._add(
                "run statuses",
                FAIL,
                detail,
                f"runs end with {_names(unknown)}, which the provider does not know: a sync "
                "ending so fails its Airflow task. Set the extras success_statuses / "
                "failure_statuses (suggested below: a run that ended with an error or was "
                "cancelled counts as a failure)",
            )
        elif new_active or task_only:
            self._add(
                "run statuses",
                WARN,
                detail,
                f"{_names(new_active + task_only)} not configured: such runs are polled on as "
                "unknown and reuse_running_sync does not find them; set active_statuses"
                + (" (suggested below)" if new_active else ""),
            )
        else:
            self._add("run statuses", OK, detail)
        self._completed_at(sets, new_success, new_failure)
        self._failure_reasons(set(sets.failure) | set(new_failure))

    def _completed_at(
        self, sets: StatusSets, new_success: list[str], new_failure: list[str]
    ) -> None:
        ended_names = set(sets.success) | set(sets.failure) | set(new_success) | set(new_failure)
        ended = [
            run for run in _unique(self.runs, "runId") if str(run.get("status")) in ended_names
        ]
        if not ended:
            self._add(
                "ended runs carry completedAt",
                WARN,
                "no ended run seen, so this could not be checked",
                "run the doctor again once a sync has finished",
            )
            return
        without = [run for run in ended if not run.get("completedAt")]
        if without:
            self._add(
                "ended runs carry completedAt",
                WARN,
                f"{len(without)} of {len(ended)} ended runs have no completedAt",
                "the provider then knows a run ended by its status alone: keep "
                "success_statuses and failure_statuses complete",
            )
        else:
            self._add(
                "ended runs carry completedAt",
                OK,
                f"{len(ended)} ended run(s), each with completedAt (the provider treats a run "
                "with completedAt as ended, whatever its status)",
            )

    def _failure_reasons(self, failure_names: set[str]) -> None:
        name = "failure reasons"
        failed = [
            run for run in _unique(self.runs, "runId") if str(run.get("status")) in failure_names
        ]
        if not failed:
            self._add(name, OK, "no failed run seen; nothing to check")
            return
        with_message = [
            run
            for run in failed
            if isinstance(run.get("error"), dict) and run["error"].get("message")
        ]
        if len(with_message) == len(failed):
            self._add(
                name,
                OK,
                f"{len(failed)} failed run(s), each with error.message (shown in the Airflow log)",
            )
            return
        _, known = _wire_names(TaskRun)
        elsewhere = sorted(
            {
                key
                for run in failed
                for key, value in run.items()
                if key not in known
                and value
                and any(word in key.lower() for word in ("message", "reason", "error", "detail"))
            }
        )
        where = f"; a reason may be under {_names(elsewhere)}" if elsewhere else ""
        self._add(
            name,
            WARN,
            f"{len(failed) - len(with_message)} of {len(failed)} failed run(s) carry no "
            f"error.message{where}",
            "the Airflow log will not show why such a run failed: tell us where this tenant "
            "puts the reason",
        )


def run_checks(target: Target, *, transport: httpx.BaseTransport | None = None) -> Report:
    """Run every check against ``target`` (``transport``: for tests)."""
    return Doctor(target, transport=transport).run()
