"""Rules about Immuta connections shared by the operators and the sensor; no I/O.

* which components of a connection are enabled, and a JSON-safe summary of their health;
* whether a create body describes the same connection as the one Immuta already has;
* which configuration values are secrets (to keep them out of logs and error messages).

Cheap to import (operators import it at DAG parse time): the client models are only type hints.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from immuta_provider.client.vocabulary import CONNECTION_COMPONENTS, REDACTED, HealthStatus

if TYPE_CHECKING:
    from immuta_provider.client.models import ComponentHealth, Connection


SERVER_ONLY_FIELDS = frozenset(
    {"state", "health", "createdBy", "createdAt", "updatedBy", "updatedAt"}
)
"""Connection fields Immuta sets itself; a create body that carries them (copied from a GET
answer, say) is not compared on them."""

# Lower-cased fragments of configuration keys whose values are secrets. Wider than Immuta's own
# rules on purpose: hiding a value in an error message costs little, showing a secret a lot.
_SECRET_KEY_FRAGMENTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "privatekey",
    "apikey",
    "accesskey",
    "authorization",
)


def looks_secret(key: str) -> bool:
    """Whether a configuration key names a secret (``password``, ``privateKey``, ``token``...)."""
    normalized = key.lower().replace("_", "").replace("-", "")
    if normalized.endswith(("url", "uri")):  # tokenUrl, secretManagerUri: addresses, not secrets
        return False
    return any(fragment in normalized for fragment in _SECRET_KEY_FRAGMENTS)


def secret_values(value: Any, *, under_secret_key: bool = False) -> Iterator[str]:
    """Every non-empty string stored under a secret-looking key, at any depth."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from secret_values(item, under_secret_key=under_secret_key or looks_secret(key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_values(item, under_secret_key=under_secret_key)
    elif under_secret_key and isinstance(value, str) and value and value != REDACTED:
        yield value


# --- health -----------------------------------------------------------------------------------


def state_text(state: Any) -> str | None:
    """A connection state as a plain string (unknown states stay plain strings already)."""
    return None if state is None else str(state)


def enabled_components(connection: Connection) -> dict[str, bool]:
    """Which components ``_validate`` checks: the client always (unless its configuration says
    ``"enabled": false``), policy and audit when their configuration has ``"enabled": true``."""
    client_configuration = connection.client_configuration or {}
    return {
        "client": client_configuration.get("enabled", True) is not False,
        "policy": bool((connection.policy_configuration or {}).get("enabled", False)),
        "audit": bool((connection.audit_configuration or {}).get("enabled", False)),
    }


def _component(connection: Connection, name: str) -> ComponentHealth | None:
    health = connection.health
    component: ComponentHealth | None = getattr(health, name, None) if health else None
    return component


def health_summary(connection: Connection) -> dict[str, Any]:
    """The JSON-safe health of a connection, as the validate operator and the sensor return it.

    ``healthy`` is true when every enabled component reports ``HEALTHY``; ``problems`` says, for
    each enabled component that does not, what Immuta reported.
    """
    enabled = enabled_components(connection)
    components: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name in CONNECTION_COMPONENTS:
        component = _component(connection, name)
        status = None if component is None else str(component.status)
        message = None if component is None else component.message
        checked_at = None if component is None else component.checked_at
        components[name] = {
            "enabled": enabled[name],
            "status": status,
            "message": message,
            "checked_at": checked_at.isoformat() if checked_at is not None else None,
        }
        if not enabled[name] or status == HealthStatus.HEALTHY:
            continue
        if status is None:
            problems.append(f"{name}: Immuta reported no health for this enabled component")
        elif message:
            problems.append(f"{name}: {status} - {message.rstrip('. ')}")
        else:
            problems.append(f"{name}: {status}")
    return {
        "connection_key": connection.connection_key,
        "technology": connection.technology,
        "state": state_text(connection.state),
        "healthy": not problems,
        "components": components,
        "problems": problems,
    }


def component_lines(summary: Mapping[str, Any]) -> list[str]:
    """One log line per component of a :func:`health_summary`."""
    lines = []
    for name in CONNECTION_COMPONENTS:
        component = summary["components"][name]
        if not component["enabled"]:
            lines.append(f"{name}: not enabled (not checked)")
            continue
        line = f"{name}: {component['status'] or 'no health reported'}"
        if component["message"]:
            line += f" - {component['message']}"
        lines.append(line)
    return lines


# --- comparing a create body with an existing connection -----------------------------------------


def configuration_differences(wanted: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """How an existing connection (as Immuta returns it) differs from a create body.

    Both sides use Immuta's wire names. Only what the body sets is compared: fields it leaves
    out (Immuta's defaults) and :data:`SERVER_ONLY_FIELDS` are not. A ``"[REDACTED]"`` value on
    either side matches anything, because Immuta never returns a secret, so a secret cannot be
    compared. Values under secret-looking keys are shown as ``'***'``.

    :return: One readable line per difference, e.g.
        ``"clientConfiguration.warehouse: existing 'A', wanted 'B'"``; empty if the same.
    """
    differences: list[str] = []
    for key, value in wanted.items():
        if key in SERVER_ONLY_FIELDS:
            continue
        _compare(value, existing.get(key), str(key), looks_secret(str(key)), differences)
    return differences


def _show(value: Any, secret: bool) -> str:
    if value is None:
        return "not set"
    if secret and not isinstance(value, Mapping | list):
        return "'***'"
    return repr(value)


def _same_scalar(wanted: Any, existing: Any) -> bool:
    # True == 1 in Python, but a flag and a number are different configurations.
    if isinstance(wanted, bool) != isinstance(existing, bool):
        return False
    return bool(wanted == existing)


def _compare(wanted: Any, existing: Any, path: str, secret: bool, out: list[str]) -> None:
    if wanted == REDACTED or existing == REDACTED:
        return
    if isinstance(wanted, Mapping):
        if not isinstance(existing, Mapping):
            out.append(f"{path}: existing {_show(existing, secret)}, wanted an object")
            return
        for key, value in wanted.items():
            _compare(
                value, existing.get(key), f"{path}.{key}", secret or looks_secret(str(key)), out
            )
        return
    if isinstance(wanted, list):
        if not isinstance(existing, list):
            out.append(f"{path}: existing {_show(existing, secret)}, wanted a list")
        elif len(wanted) != len(existing):
            out.append(
                f"{path}: existing has {len(existing)} item(s), wanted {len(wanted)} item(s)"
            )
        else:
            for index, (item, current) in enumerate(zip(wanted, existing, strict=True)):
                _compare(item, current, f"{path}[{index}]", secret, out)
        return
    if not _same_scalar(wanted, existing):
        out.append(f"{path}: existing {_show(existing, secret)}, wanted {_show(wanted, secret)}")
