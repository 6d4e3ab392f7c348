"""The new operators' pure logic and argument checks: search cutting, JSON arguments, the create
operator's templating (body_file with template_ext semantics), lazy package exports and the
import cost at DAG parse time. Their behaviour against Immuta is in tests/integration/."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.airflow_versions import AUTHORING_MODULES, AUTHORING_PREFIXES, authoring
from tests.unit.airflow.test_operator_import_cost import PARSE_TIME_HEAVY

from immuta_provider import get_provider_info
from immuta_provider._compat import BaseOperator
from immuta_provider.operators._arguments import json_object, optional_json_object
from immuta_provider.operators.connections import (
    ImmutaCreateConnectionOperator,
    ImmutaDeleteConnectionOperator,
    ImmutaUpdateConnectionOperator,
)
from immuta_provider.operators.data_objects import (
    ImmutaSearchDataObjectsOperator,
    search_page_size,
    take_at_most,
)
from immuta_provider.operators.task_runs import ImmutaCancelTaskRunOperator

# ---- cutting search results -----------------------------------------------------------------


class CountingItems:
    """An iterable that counts how many items were read from it (like a lazy paginator)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.read = 0

    def __iter__(self) -> Iterator[int]:
        for item in range(self.count):
            self.read += 1
            yield item


def test_take_at_most_cuts_and_says_so() -> None:
    items = CountingItems(10)
    assert take_at_most(items, 3) == ([0, 1, 2], True)
    assert items.read == 4  # one past the limit, no more


@pytest.mark.parametrize("count", [0, 2, 3])
def test_take_at_most_does_not_claim_a_cut_when_everything_fits(count: int) -> None:
    assert take_at_most(CountingItems(count), 3) == (list(range(count)), False)


def test_take_at_most_without_a_limit_takes_everything() -> None:
    assert take_at_most(CountingItems(250), None) == (list(range(250)), False)


@pytest.mark.parametrize(
    ("max_results", "page_size"),
    [(1, 2), (20, 21), (99, 100), (100, 100), (1000, 100), (None, 100)],
)
def test_search_page_size_fetches_one_extra_item_when_it_fits_in_a_page(
    max_results: int | None, page_size: int
) -> None:
    assert search_page_size(max_results) == page_size


@pytest.mark.parametrize("bad", [0, -5, 2.5, "10", True])
def test_search_max_results_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_results must be a whole number >= 1, or None"):
        ImmutaSearchDataObjectsOperator(task_id="s", connection_key="k", max_results=bad)


# ---- JSON arguments -------------------------------------------------------------------------


def test_json_object_accepts_a_dict_or_json_text() -> None:
    assert json_object({"a": 1}, "changes") == {"a": 1}
    assert json_object('{"a": [1, 2]}', "changes") == {"a": [1, 2]}
    assert optional_json_object(None, "attributes") is None
    assert optional_json_object("", "attributes") is None


def test_invalid_json_names_the_argument_and_the_place_but_not_the_value() -> None:
    text = '{"password": "hunter2-secret", }'
    with pytest.raises(ValueError) as error:
        json_object(text, "body_file", source="connections/prod.json")
    message = str(error.value)
    assert message.startswith("body_file (connections/prod.json) is not valid JSON")
    assert "line 1 column" in message
    assert "hunter2-secret" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("[1, 2]", "must be a JSON object ({...}), not a JSON list"), (42, "not int")],
)
def test_non_objects_are_refused(value: Any, expected: str) -> None:
    with pytest.raises(ValueError, match="changes") as error:
        json_object(value, "changes")
    assert expected in str(error.value)


# ---- constructor checks ---------------------------------------------------------------------


def test_create_needs_exactly_one_of_body_and_body_file() -> None:
    with pytest.raises(ValueError, match="exactly one of body"):
        ImmutaCreateConnectionOperator(task_id="c")
    with pytest.raises(ValueError, match="exactly one of body"):
        ImmutaCreateConnectionOperator(task_id="c", body={"a": 1}, body_file="x.json")


def test_create_body_file_must_be_a_json_file() -> None:
    with pytest.raises(ValueError, match=r"body_file must be the path of a \.json file"):
        ImmutaCreateConnectionOperator(task_id="c", body_file="connection.yaml")


@pytest.mark.parametrize("operator", [ImmutaDeleteConnectionOperator, ImmutaCancelTaskRunOperator])
def test_waiting_operators_check_poll_interval_and_timeout(operator: Any) -> None:
    kwargs: dict[str, Any] = {"task_id": "t", "connection_key": "k"}
    if operator is ImmutaCancelTaskRunOperator:
        kwargs["immuta_task_id"] = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
    with pytest.raises(ValueError, match="poll_interval must be a number of seconds > 0"):
        operator(poll_interval=0, **kwargs)
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        operator(timeout=-1, **kwargs)


def test_update_keeps_airflows_own_dry_run_method() -> None:
    operator = ImmutaUpdateConnectionOperator(
        task_id="u", connection_key="k", changes={"a": 1}, dry_run=True
    )
    assert operator.dry_run_changes is True
    if hasattr(BaseOperator, "dry_run"):  # not on Airflow 3.0
        assert callable(operator.dry_run)  # BaseOperator.dry_run() is not shadowed


# ---- the create operator's templating -------------------------------------------------------


def _dag(tmp_path: Path) -> Any:
    DAG = authoring("DAG")

    return DAG(
        "render_test",
        schedule=None,
        start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        template_searchpath=[str(tmp_path)],
    )


def test_body_file_is_read_from_the_search_path_rendered_and_parsed(tmp_path: Path) -> None:
    (tmp_path / "connections").mkdir()
    (tmp_path / "connections" / "prod.json").write_text(
        json.dumps(
            {
                "connectionKey": "{{ params.key }}",
                "technology": "Snowflake",
                "clientConfiguration": {"password": "{{ params.pw }}", "keyFile": "sa.json"},
            }
        )
    )
    operator = ImmutaCreateConnectionOperator(
        task_id="c", body_file="connections/prod.json", dag=_dag(tmp_path)
    )
    operator.render_template_fields(
        context={"params": {"key": "snowflake-prod", "pw": "rendered-password-123"}}
    )
    # A dict, so the rendered-template view redacts "password" by its key.
    assert operator.body_file == {
        "connectionKey": "snowflake-prod",
        "technology": "Snowflake",
        "clientConfiguration": {"password": "rendered-password-123", "keyFile": "sa.json"},
    }


def test_a_json_file_name_inside_the_body_stays_a_value(tmp_path: Path) -> None:
    # With template_ext=(".json",) Airflow alone would try to load "sa.json" as a template.
    body = {
        "connectionKey": "{{ params.key }}",
        "technology": "BigQuery",
        "clientConfiguration": {"keyFile": "sa.json", "scopes": ["a.json", "{{ params.key }}"]},
    }
    operator = ImmutaCreateConnectionOperator(task_id="c", body=body, dag=_dag(tmp_path))
    operator.render_template_fields(context={"params": {"key": "bq"}})
    assert operator.body == {
        "connectionKey": "bq",
        "technology": "BigQuery",
        "clientConfiguration": {"keyFile": "sa.json", "scopes": ["a.json", "bq"]},
    }
    assert operator.template_ext == (".json",)


def test_body_as_json_text_is_parsed_after_rendering(tmp_path: Path) -> None:
    operator = ImmutaCreateConnectionOperator(
        task_id="c",
        body='{"connectionKey": "{{ params.key }}", "technology": "Trino"}',
        dag=_dag(tmp_path),
    )
    operator.render_template_fields(context={"params": {"key": "trino-1"}})
    assert operator.body == {"connectionKey": "trino-1", "technology": "Trino"}


def test_a_body_file_with_bad_json_fails_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"connectionKey": "k",}')
    operator = ImmutaCreateConnectionOperator(
        task_id="c", body_file="broken.json", dag=_dag(tmp_path)
    )
    with pytest.raises(ValueError, match=r"body_file \(broken.json\) is not valid JSON"):
        operator.render_template_fields(context={"params": {}})


# ---- package exports and import cost --------------------------------------------------------


def test_every_exported_class_resolves_and_lives_in_a_module_of_the_provider_info() -> None:
    import immuta_provider.operators as operators
    import immuta_provider.sensors as sensors

    info = get_provider_info()
    for package, section in ((operators, "operators"), (sensors, "sensors")):
        listed = {module for entry in info[section] for module in entry["python-modules"]}
        for name in package.__all__:
            cls = getattr(package, name)
            assert cls.__name__ == name
            assert cls.__module__ in listed, (name, cls.__module__)
        assert set(package.__all__) <= set(dir(package))
        with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
            package.Nope  # noqa: B018


def test_imports_stay_light_at_dag_parse_time() -> None:
    """One child process (a clean sys.modules): what the packages, then the classes, load."""
    code = (
        "import json, sys\n"
        f"import {', '.join(AUTHORING_MODULES)}\n"
        "before = set(sys.modules)\n"
        "import immuta_provider.operators, immuta_provider.sensors\n"
        "packages = set(sys.modules) - before\n"
        "from immuta_provider.operators import ImmutaValidateConnectionOperator, "
        "ImmutaDeleteDataObjectOperator, ImmutaCancelTaskRunOperator\n"
        "from immuta_provider.sensors import ImmutaConnectionHealthSensor\n"
        "import immuta_provider.operators.connections\n"
        "print(json.dumps([sorted(packages), sorted(set(sys.modules) - before)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    packages, classes = json.loads(result.stdout.strip().splitlines()[-1])
    # The packages alone load no operator module (immuta_provider itself may already be loaded
    # by Airflow's provider discovery).
    # (_lazy may come earlier: the provider info's connection form reads the status defaults
    # from the client's vocabulary, whose package is lazy too.)
    ours = sorted(
        m for m in packages if m.startswith("immuta_provider.") and m != "immuta_provider._lazy"
    )
    assert ours == ["immuta_provider.operators", "immuta_provider.sensors"]
    # The classes load only our light modules and the SDK's base classes: no client, no hook.
    heavy = [m for m in classes if any(m == h or m.startswith(h + ".") for h in PARSE_TIME_HEAVY)]
    assert heavy == []
    assert all(m.startswith(("immuta_provider", *AUTHORING_PREFIXES)) for m in classes), classes
