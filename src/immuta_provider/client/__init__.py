"""Typed client for Immuta's Connections API (sync and async). Needs no Airflow.

```python
from immuta_provider.client import ImmutaClient

with ImmutaClient("https://acme.hosted.immutacloud.com", api_key) as client:
    task = client.create_task("snowflake-prod")
    for run in client.list_task_runs("snowflake-prod", task.task_id):
        print(run.status, run.is_terminal)
```

Every name below is imported from its module on first access, so that the light modules (the
vocabulary, the errors, the UI links) can be imported at DAG parse time without loading httpx,
pydantic or tenacity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from immuta_provider._lazy import lazy_exports

_VOCABULARY = "immuta_provider.client.vocabulary"
_ERRORS = "immuta_provider.client.errors"
_MODELS = "immuta_provider.client.models"
_PAGINATION = "immuta_provider.client.pagination"
_UI = "immuta_provider.client.ui"

_MODULE_OF = {
    "AsyncImmutaClient": "immuta_provider.client._async",
    "ImmutaClient": "immuta_provider.client._sync",
    "ClientConfig": "immuta_provider.client._base",
    "USER_AGENT": "immuta_provider.client._base",
    **dict.fromkeys(
        (
            "REDACTED",
            "TERMINAL_STATUSES",
            "ConnectionState",
            "HealthStatus",
            "TaskStatus",
            "TaskTrigger",
            "TaskType",
            "is_terminal_status",
        ),
        _VOCABULARY,
    ),
    **dict.fromkeys(
        (
            "ImmutaAPIError",
            "ImmutaAuthenticationError",
            "ImmutaBadRequestError",
            "ImmutaConflictError",
            "ImmutaError",
            "ImmutaNotFoundError",
            "ImmutaPermissionError",
            "ImmutaRateLimitError",
            "ImmutaResponseError",
            "ImmutaServerError",
            "ImmutaTimeoutError",
            "ImmutaTransportError",
            "ImmutaValidationError",
            "RequestContext",
        ),
        _ERRORS,
    ),
    **dict.fromkeys(
        (
            "CancelTaskRunResult",
            "ComponentHealth",
            "Connection",
            "ConnectionHealth",
            "DataObject",
            "ImmutaModel",
            "Task",
            "TaskReference",
            "TaskRun",
            "TaskRunError",
        ),
        _MODELS,
    ),
    **dict.fromkeys(("AsyncPaginator", "Page", "Paginator"), _PAGINATION),
    **dict.fromkeys(("connection_url", "data_object_url", "task_run_url"), _UI),
}

__all__ = [
    "REDACTED",
    "TERMINAL_STATUSES",
    "USER_AGENT",
    "AsyncImmutaClient",
    "AsyncPaginator",
    "CancelTaskRunResult",
    "ClientConfig",
    "ComponentHealth",
    "Connection",
    "ConnectionHealth",
    "ConnectionState",
    "DataObject",
    "HealthStatus",
    "ImmutaAPIError",
    "ImmutaAuthenticationError",
    "ImmutaBadRequestError",
    "ImmutaClient",
    "ImmutaConflictError",
    "ImmutaError",
    "ImmutaModel",
    "ImmutaNotFoundError",
    "ImmutaPermissionError",
    "ImmutaRateLimitError",
    "ImmutaResponseError",
    "ImmutaServerError",
    "ImmutaTimeoutError",
    "ImmutaTransportError",
    "ImmutaValidationError",
    "Page",
    "Paginator",
    "RequestContext",
    "Task",
    "TaskReference",
    "TaskRun",
    "TaskRunError",
    "TaskStatus",
    "TaskTrigger",
    "TaskType",
    "connection_url",
    "data_object_url",
    "is_terminal_status",
    "task_run_url",
]

if TYPE_CHECKING:
    from immuta_provider.client._async import AsyncImmutaClient
    from immuta_provider.client._base import USER_AGENT, ClientConfig
    from immuta_provider.client._sync import ImmutaClient
    from immuta_provider.client.errors import (
        ImmutaAPIError,
        ImmutaAuthenticationError,
        ImmutaBadRequestError,
        ImmutaConflictError,
        ImmutaError,
        ImmutaNotFoundError,
        ImmutaPermissionError,
        ImmutaRateLimitError,
        ImmutaResponseError,
        ImmutaServerError,
        ImmutaTimeoutError,
        ImmutaTransportError,
        ImmutaValidationError,
        RequestContext,
    )
    from immuta_provider.client.models import (
        CancelTaskRunResult,
        ComponentHealth,
        Connection,
        ConnectionHealth,
        DataObject,
        ImmutaModel,
        Task,
        TaskReference,
        TaskRun,
        TaskRunError,
    )
    from immuta_provider.client.pagination import AsyncPaginator, Page, Paginator
    from immuta_provider.client.ui import connection_url, data_object_url, task_run_url
    from immuta_provider.client.vocabulary import (
        REDACTED,
        TERMINAL_STATUSES,
        ConnectionState,
        HealthStatus,
        TaskStatus,
        TaskTrigger,
        TaskType,
        is_terminal_status,
    )


__getattr__, __dir__ = lazy_exports(globals(), _MODULE_OF, __all__)
