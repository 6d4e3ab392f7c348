"""Operators for Immuta data objects: search them, delete one.

(Syncing a connection's data objects is :class:`~immuta_provider.operators.immuta.
ImmutaDataObjectSyncOperator`.) Imported at every DAG parse: the hook and the client are imported
when a task runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from immuta_provider._compat import AirflowException, conf
from immuta_provider.client.errors import ImmutaConflictError
from immuta_provider.links import ImmutaConnectionLink, ImmutaTaskRunLink
from immuta_provider.operators._arguments import optional_json_object
from immuta_provider.operators._base import (
    ImmutaBaseOperator,
    ImmutaTaskRunWaitingOperator,
)

if TYPE_CHECKING:
    from immuta_provider.client import ImmutaClient

T = TypeVar("T")

DEFAULT_MAX_RESULTS = 1000
"""Default cap on the data objects a search returns, to keep the XCom small."""


def take_at_most(items: Iterable[T], limit: int | None) -> tuple[list[T], bool]:
    """The first ``limit`` items (all of them if ``limit`` is ``None``), and whether more exist.

    Reads at most one item past the limit, so a lazy paginator fetches no page it does not need
    beyond the one holding that item.
    """
    if limit is None:
        return list(items), False
    taken: list[T] = []
    for item in items:
        if len(taken) == limit:
            return taken, True
        taken.append(item)
    return taken, False


def search_page_size(max_results: int | None) -> int:
    """The page size for a search: one more than ``max_results`` when that fits in one page, so
    learning whether results were cut costs no extra request."""
    from immuta_provider.client.validation import MAX_PAGE_SIZE

    if max_results is None:
        return MAX_PAGE_SIZE
    return min(max_results + 1, MAX_PAGE_SIZE)


class ImmutaSearchDataObjectsOperator(ImmutaBaseOperator):
    """Search the data objects of an Immuta connection and return them.

    ``attributes`` match data object fields exactly, by their wire names, e.g.
    ``{"type": "table", "name": "customers"}`` or ``{"parentId": "<schema id>"}``; without them
    every data object of the connection matches. Results are fetched page by page and at most
    ``max_results`` are returned, because the result becomes an XCom: when more objects match,
    a warning in the log says so.

    Returns (as XCom) a list of data objects as Immuta returns them (wire names: ``id``,
    ``name``, ``type``, ``normalizedType``, ``remoteId``, ``parentId``, ``connectionKey``...).

    :param connection_key: The Immuta connection whose data objects to search (templated).
    :param attributes: Field values to match (templated): a dict, or JSON text.
    :param max_results: The most data objects to return; ``None`` returns all of them (mind
        the XCom size with large inventories).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    """

    template_fields = ("connection_key", "attributes")
    template_fields_renderers = {"attributes": "json"}
    operator_extra_links = (ImmutaConnectionLink(),)

    def __init__(
        self,
        *,
        connection_key: str,
        attributes: Mapping[str, Any] | str | None = None,
        max_results: int | None = DEFAULT_MAX_RESULTS,
        immuta_conn_id: str = "immuta_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
        ):
            raise ValueError(
                f"max_results must be a whole number >= 1, or None for all results; "
                f"got {max_results!r}."
            )
        self.connection_key = connection_key
        self.attributes = attributes
        self.max_results = max_results
        self.immuta_conn_id = immuta_conn_id

    def execute(self, context: Any) -> list[dict[str, Any]]:
        """Run the search and return at most ``max_results`` data objects."""
        attributes = optional_json_object(self.attributes, "attributes")
        client = self.hook.get_client()
        self.push_immuta_link(context)
        paginator = client.search_data_objects(
            self.connection_key, attributes, page_size=search_page_size(self.max_results)
        )
        found, cut = take_at_most(paginator, self.max_results)
        where = f"connection {self.connection_key!r}" + (
            f" matching {attributes}" if attributes else ""
        )
        if cut:
            self.log.warning(
                "Returning only the first %d data objects of %s: more match. The result is an "
                "XCom, so it is capped by max_results; raise max_results (None returns all), or "
                "narrow the search with attributes.",
                len(found),
                where,
            )
        else:
            self.log.info("Found %d data object(s) of %s.", len(found), where)
        return [data_object.model_dump(mode="json", by_alias=True) for data_object in found]


class ImmutaDeleteDataObjectOperator(ImmutaTaskRunWaitingOperator):
    """Delete a data object (and everything under it) from an Immuta connection, and wait.

    The deletion is a ``DATA_OBJECT_DELETE`` task in Immuta; the operator waits for its run
    exactly as :class:`~immuta_provider.operators.immuta.ImmutaDataObjectSyncOperator` waits for
    a sync (in a worker, or deferred to the triggerer), with the same ``poll_interval`` /
    ``timeout`` semantics.

    Returns (as XCom) the run summary of the deletion task: ``connection_key``,
    ``immuta_task_id``, ``run_id``, ``status``, timestamps and ``duration_seconds``.

    :param connection_key: The Immuta connection the data object belongs to (templated).
    :param data_object_id: The id (a UUID) of the data object to delete (templated), e.g. from
        :class:`ImmutaSearchDataObjectsOperator`'s output.
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

    template_fields = ("connection_key", "data_object_id")
    operator_extra_links = (ImmutaConnectionLink(), ImmutaTaskRunLink())

    def __init__(
        self,
        *,
        connection_key: str,
        data_object_id: str,
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
        self.data_object_id = data_object_id
        self.immuta_conn_id = immuta_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Start the deletion and wait for it as configured."""
        client = self.hook.get_client()
        self._push_link(context)  # the connection link, even if the deletion is refused
        return self._follow_started_task(context, client, self._start_deletion(client))

    def _start_deletion(self, client: ImmutaClient) -> str:

        try:
            reference = client.delete_data_object(self.connection_key, self.data_object_id)
        except ImmutaConflictError as exc:
            raise AirflowException(
                f"Immuta refused to delete data object {self.data_object_id} of connection "
                f"{self.connection_key!r}: {exc}"
            ) from exc
        self.log.info(
            "Immuta accepted the deletion of data object %s of connection %r: Immuta task %s.",
            self.data_object_id,
            self.connection_key,
            reference.task_id,
        )
        return reference.task_id
