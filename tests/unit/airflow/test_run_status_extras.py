"""The run status extras of an ``immuta`` connection: ``success_statuses``, ``failure_statuses``,
``active_statuses`` (each a JSON list or a comma-separated string), read into
:class:`~immuta_provider.client.statuses.RunStatuses`, with errors that name the extra."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from tests.support.airflow_versions import connection_from_json, connection_from_uri

from immuta_provider.client.statuses import (
    ENDED_UNKNOWN,
    FAILED,
    GOING,
    SUCCEEDED,
    UNKNOWN,
    InvalidRunStatuses,
    RunStatuses,
    parse_status_list,
)
from immuta_provider.hooks.connection_settings import (
    InvalidImmutaConnection,
    settings_from_connection,
)

KEY = "an-immuta-api-key-123"
NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def settings(**extra: Any) -> Any:
    conn = connection_from_json(
        json.dumps(
            {"conn_type": "immuta", "host": "https://acme.example", "password": KEY, "extra": extra}
        ),
        conn_id="immuta_tenant",
    )
    return settings_from_connection(conn)


def test_defaults_when_no_extra_is_set() -> None:
    statuses = settings().statuses
    assert statuses == RunStatuses()
    assert statuses.success == ("COMPLETED",)
    assert statuses.failure == ("FAILED", "CANCELED")
    assert statuses.active == ("PENDING", "RUNNING", "CANCELING")
    assert statuses.is_default


@pytest.mark.parametrize(
    "value",
    [
        ["SUCCEEDED", "DONE"],
        '["SUCCEEDED", "DONE"]',
        "SUCCEEDED, DONE",
        " SUCCEEDED ,DONE, SUCCEEDED ",
    ],
    ids=["json-list", "json-text", "comma", "spaces-and-duplicates"],
)
def test_each_spelling_of_a_list_is_read(value: Any) -> None:
    assert settings(success_statuses=value).statuses.success == ("SUCCEEDED", "DONE")


def test_all_three_together_replace_the_defaults() -> None:
    statuses = settings(
        success_statuses="SUCCEEDED",
        failure_statuses="ERRORED, ABORTED",
        active_statuses=["QUEUED", "IN_PROGRESS", "ABORTING"],
    ).statuses
    assert statuses.to_dict() == {
        "success": ["SUCCEEDED"],
        "failure": ["ERRORED", "ABORTED"],
        "active": ["QUEUED", "IN_PROGRESS", "ABORTING"],
    }
    assert RunStatuses.from_dict(statuses.to_dict()) == statuses
    # The same sets as plain attributes of the settings (the sync watcher reads these).
    conn = settings(success_statuses="SUCCEEDED", failure_statuses="ERRORED, ABORTED")
    assert (conn.success_statuses, conn.failure_statuses) == (
        ("SUCCEEDED",),
        ("ERRORED", "ABORTED"),
    )
    assert conn.active_statuses == ("PENDING", "RUNNING", "CANCELING")
    assert RunStatuses.from_dict(None) == RunStatuses()


def test_uri_form_and_prefixed_and_blank_extras() -> None:
    conn = connection_from_uri(
        f"immuta://:{KEY}@acme.example?success_statuses=SUCCEEDED%2CDONE"
        "&extra__immuta__failure_statuses=ERRORED&active_statuses=",
        conn_id="immuta_tenant",
    )
    statuses = settings_from_connection(conn).statuses
    assert statuses.success == ("SUCCEEDED", "DONE")
    assert statuses.failure == ("ERRORED",)
    assert statuses.active == RunStatuses().active  # blank: the default


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"success_statuses": []}, "extra 'success_statuses' is an empty list"),
        ({"success_statuses": "[]"}, "extra 'success_statuses' is an empty list"),
        ({"failure_statuses": " , "}, "extra 'failure_statuses' has the entry ''"),
        ({"active_statuses": [1, 2]}, "extra 'active_statuses' has the entry 1"),
        ({"active_statuses": {"a": 1}}, "extra 'active_statuses' must be a list of run statuses"),
        ({"success_statuses": '["OK"'}, "starts like a JSON list but is not valid JSON"),
        (
            {"success_statuses": "COMPLETED, CANCELED"},
            "run status 'CANCELED' is in both 'success_statuses' and 'failure_statuses' "
            "(its default)",
        ),
        (
            {"active_statuses": "RUNNING, DONE", "success_statuses": "DONE"},
            "run status 'DONE' is in both 'success_statuses' and 'active_statuses'",
        ),
    ],
)
def test_bad_extras_name_the_connection_the_extra_and_the_fix(
    extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidImmutaConnection) as caught:
        settings(**extra)
    message = str(caught.value)
    assert message.startswith("Airflow connection 'immuta_tenant': ")
    assert expected in message
    assert KEY not in message


def test_parse_status_list_unset() -> None:
    assert parse_status_list("success_statuses", None) is None
    assert parse_status_list("success_statuses", "  ") is None
    with pytest.raises(InvalidRunStatuses):
        parse_status_list("success_statuses", 5)


def test_classify_by_set_and_completed_at() -> None:
    statuses = RunStatuses.create(success=["SUCCEEDED"], failure=["ERRORED"], active=["BUSY"])
    assert statuses.classify("SUCCEEDED") == SUCCEEDED
    assert statuses.classify("ERRORED", NOW) == FAILED
    assert statuses.classify("BUSY") == GOING
    # completedAt decides that a run has ended, whatever its status is called.
    assert statuses.classify("BUSY", NOW) == ENDED_UNKNOWN
    assert statuses.classify("COMPLETED", NOW) == ENDED_UNKNOWN
    assert statuses.classify("COMPLETED") == UNKNOWN
    assert statuses.has_ended("SUCCEEDED") and statuses.has_ended("WHATEVER", NOW)
    assert not statuses.has_ended("WHATEVER")


def test_a_run_being_cancelled_is_not_attachable() -> None:
    assert RunStatuses().attachable == ("PENDING", "RUNNING")
    custom = RunStatuses.create(active=["QUEUED", "IN_PROGRESS", "CANCELLING", "CANCEL_REQUESTED"])
    assert custom.attachable == ("QUEUED", "IN_PROGRESS")


def test_unknown_end_advice_names_the_status_both_extras_and_the_connection() -> None:
    advice = RunStatuses().unknown_end_advice("SUCCEEDED", "immuta_tenant")
    assert "'SUCCEEDED'" in advice
    assert (
        "success_statuses (COMPLETED)" in advice and "failure_statuses (FAILED, CANCELED)" in advice
    )
    assert "Airflow connection 'immuta_tenant'" in advice
    assert '"success_statuses": ["COMPLETED", "SUCCEEDED"]' in advice
