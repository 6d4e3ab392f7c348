"""Typed client for Immuta's Connections API (sync and async). Needs no Airflow.

```python
from immuta_provider.client import ImmutaClient

with ImmutaClient("https://acme.hosted.immutacloud.com", api_key) as client:
    task = client.create_task("snowflake-prod")
    for run in client.list_task_runs("snowflake-prod", task.task_id):
        print(run.status, run.is_terminal)
```
"""

from __future__ import annotations

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
)
from immuta_provider.client.models import (
    REDACTED,
    TERMINAL_STATUSES,
    CancelTaskRunResult,
    ComponentHealth,
    Connection,
    ConnectionHealth,
    ConnectionState,
    DataObject,
    HealthStatus,
    ImmutaModel,
    Task,
    TaskReference,
    TaskRun,
    TaskRunError,
    TaskStatus,
    TaskTrigger,
    TaskType,
    is_terminal_status,
)
from immuta_provider.client.pagination import AsyncPaginator, Page, Paginator
from immuta_provider.client.ui import connection_url, data_object_url, task_run_url

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
