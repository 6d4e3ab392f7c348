"""The pure rules behind the connection operators and the health sensor (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from immuta_provider._connections import (
    component_lines,
    configuration_differences,
    enabled_components,
    health_summary,
    looks_secret,
    secret_values,
)
from immuta_provider.client.models import Connection

BODY: dict[str, Any] = {
    "connectionKey": "snowflake-prod",
    "technology": "Snowflake",
    "clientConfiguration": {
        "hostname": "acme.snowflakecomputing.com",
        "port": 443,
        "warehouse": "IMMUTA_WH",
        "password": "real-secret-value",
        "roles": ["IMMUTA_SYSTEM", "PUBLIC"],
    },
    "policyConfiguration": {"enabled": True},
}


def existing(**overrides: Any) -> dict[str, Any]:
    """What Immuta returns for the connection created from BODY."""
    connection: dict[str, Any] = {
        "connectionKey": "snowflake-prod",
        "technology": "Snowflake",
        "state": "ACTIVE",
        "clientConfiguration": {
            "hostname": "acme.snowflakecomputing.com",
            "port": 443,
            "warehouse": "IMMUTA_WH",
            "password": "[REDACTED]",
            "roles": ["IMMUTA_SYSTEM", "PUBLIC"],
            "authenticationType": "userPassword",  # a server default the body left out
        },
        "policyConfiguration": {"enabled": True},
        "auditConfiguration": {"enabled": False},
        "health": {"client": {"status": "HEALTHY"}},
        "createdBy": "admin@acme.example",
        "createdAt": "2026-11-25T02:00:00+00:00",
    }
    connection.update(overrides)
    return connection


# ---- comparing a create body with an existing connection ------------------------------------


def test_same_configuration_has_no_differences() -> None:
    # Redacted secret, server-only fields and defaults the body leaves out are not differences.
    assert configuration_differences(BODY, existing()) == []


def test_server_only_fields_in_the_body_are_ignored() -> None:
    # A body copied from a GET answer carries state, health and timestamps.
    body = {**BODY, "state": "INACTIVE", "createdAt": "2020-01-01T00:00:00+00:00", "health": {}}
    assert configuration_differences(body, existing()) == []


def test_redacted_in_the_body_matches_anything() -> None:
    body = {**BODY, "clientConfiguration": {**BODY["clientConfiguration"], "port": "[REDACTED]"}}
    assert configuration_differences(body, existing()) == []


def test_a_changed_value_is_reported_with_its_path_and_both_values() -> None:
    current = existing()
    current["clientConfiguration"] = {**current["clientConfiguration"], "warehouse": "OTHER_WH"}
    assert configuration_differences(BODY, current) == [
        "clientConfiguration.warehouse: existing 'OTHER_WH', wanted 'IMMUTA_WH'"
    ]


def test_several_differences_at_several_levels() -> None:
    current = existing(technology="Databricks", policyConfiguration={"enabled": False})
    differences = configuration_differences(BODY, current)
    assert differences == [
        "technology: existing 'Databricks', wanted 'Snowflake'",
        "policyConfiguration.enabled: existing False, wanted True",
    ]


def test_a_field_missing_on_the_existing_connection_is_a_difference() -> None:
    body = {**BODY, "auditConfiguration": {"enabled": True, "frequency": "hourly"}}
    differences = configuration_differences(body, existing())
    assert differences == [
        "auditConfiguration.enabled: existing False, wanted True",
        "auditConfiguration.frequency: existing not set, wanted 'hourly'",
    ]


def test_lists_are_compared_item_by_item_and_by_length() -> None:
    current = existing()
    current["clientConfiguration"] = {**current["clientConfiguration"], "roles": ["PUBLIC"]}
    assert configuration_differences(BODY, current) == [
        "clientConfiguration.roles: existing has 1 item(s), wanted 2 item(s)"
    ]
    current["clientConfiguration"]["roles"] = ["IMMUTA_SYSTEM", "ANALYST"]
    assert configuration_differences(BODY, current) == [
        "clientConfiguration.roles[1]: existing 'ANALYST', wanted 'PUBLIC'"
    ]


def test_a_flag_is_not_equal_to_a_number() -> None:
    body = {"connectionKey": "k", "policyConfiguration": {"enabled": True}}
    assert configuration_differences(
        body, {"connectionKey": "k", "policyConfiguration": {"enabled": 1}}
    ) == ["policyConfiguration.enabled: existing 1, wanted True"]


def test_object_versus_scalar_is_a_difference() -> None:
    body = {"connectionKey": "k", "clientConfiguration": {"hostname": "h"}}
    assert configuration_differences(body, {"connectionKey": "k", "clientConfiguration": "h"}) == [
        "clientConfiguration: existing 'h', wanted an object"
    ]


def test_secret_values_are_never_shown_in_differences() -> None:
    # Immuta would redact a real secret; a non-redacted one (a proxy, an older API) stays hidden.
    body = {"connectionKey": "k", "clientConfiguration": {"privateKey": "wanted-private-key"}}
    current = {"connectionKey": "k", "clientConfiguration": {"privateKey": "stored-private-key"}}
    (difference,) = configuration_differences(body, current)
    assert difference == "clientConfiguration.privateKey: existing '***', wanted '***'"


# ---- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["password", "PASSWORD", "privateKey", "private_key", "apiKey", "access-token", "secret"]
)
def test_secret_looking_keys(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key", ["hostname", "connectionKey", "warehouse", "username", "port", "tokenUrl"]
)
def test_ordinary_keys(key: str) -> None:
    assert not looks_secret(key)


def test_secret_values_are_found_at_any_depth_and_the_placeholder_is_not() -> None:
    body = {
        "clientConfiguration": {
            "password": "pw-1",
            "oauth": {"clientSecret": "cs-2", "tokenUrl": "https://idp"},
            "credentials": {"user": "u", "key": "k-3"},  # everything under a secret key
            "token": "[REDACTED]",
            "hostname": "h",
        },
        "tokens": ["t-4", "t-5"],
    }
    assert sorted(secret_values(body)) == ["cs-2", "k-3", "pw-1", "t-4", "t-5", "u"]


# ---- health --------------------------------------------------------------------------------


def connection(**fields: Any) -> Connection:
    wire = {
        "connectionKey": "snowflake-prod",
        "technology": "Snowflake",
        "state": "ACTIVE",
        "clientConfiguration": {"hostname": "h"},
        "policyConfiguration": {"enabled": True},
        "auditConfiguration": {"enabled": False},
        "health": {
            "client": {"status": "HEALTHY", "checkedAt": "2026-11-25T02:00:00Z"},
            "policy": {"status": "HEALTHY", "checkedAt": "2026-11-25T02:00:00Z"},
            "audit": {"status": "UNKNOWN", "message": "Not validated yet."},
        },
    }
    wire.update(fields)
    return Connection.model_validate(wire)


def test_enabled_components_follow_the_configurations() -> None:
    assert enabled_components(connection()) == {"client": True, "policy": True, "audit": False}
    off = connection(clientConfiguration={"enabled": False}, policyConfiguration=None)
    assert enabled_components(off) == {"client": False, "policy": False, "audit": False}


def test_healthy_when_every_enabled_component_is_healthy() -> None:
    summary = health_summary(connection())
    assert summary["healthy"] is True
    assert summary["problems"] == []
    assert summary["state"] == "ACTIVE"
    assert summary["components"]["client"] == {
        "enabled": True,
        "status": "HEALTHY",
        "message": None,
        "checked_at": "2026-11-25T02:00:00+00:00",
    }
    # The disabled audit component's UNKNOWN does not count.
    assert summary["components"]["audit"]["enabled"] is False
    assert component_lines(summary) == [
        "client: HEALTHY",
        "policy: HEALTHY",
        "audit: not enabled (not checked)",
    ]


def test_an_unhealthy_enabled_component_is_a_problem_with_immutas_message() -> None:
    health = {
        "client": {"status": "UNHEALTHY", "message": "Snowflake rejected the credentials."},
        "policy": {"status": "HEALTHY"},
    }
    summary = health_summary(connection(state="UNHEALTHY", health=health))
    assert summary["healthy"] is False
    assert summary["problems"] == ["client: UNHEALTHY - Snowflake rejected the credentials"]
    assert component_lines(summary)[0] == "client: UNHEALTHY - Snowflake rejected the credentials."


def test_an_enabled_component_without_health_is_not_healthy() -> None:
    summary = health_summary(connection(health={"client": {"status": "HEALTHY"}}))
    assert summary["healthy"] is False
    assert summary["problems"] == ["policy: Immuta reported no health for this enabled component"]
    summary = health_summary(connection(health=None))
    assert [p.split(":")[0] for p in summary["problems"]] == ["client", "policy"]


def test_an_unknown_status_is_kept_and_is_not_healthy() -> None:
    health = {"client": {"status": "DEGRADED"}, "policy": {"status": "HEALTHY"}}
    summary = health_summary(connection(health=health))
    assert summary["components"]["client"]["status"] == "DEGRADED"
    assert summary["problems"] == ["client: DEGRADED"]
