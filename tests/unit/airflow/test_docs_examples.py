"""The DAGs in the operator pages of the docs parse, as Airflow's DAG processor parses them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support.airflow_versions import authoring_source, dag_bag

REPO_ROOT = Path(__file__).resolve().parents[3]

PAGES = (
    "operators-connections.md",
    "operators-data-objects.md",
    "operators-task-runs.md",
    "endpoints.md",
    "scheduling-on-syncs.md",
)
CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _dag_examples() -> list[tuple[str, str]]:
    examples = []
    for page in PAGES:
        text = (REPO_ROOT / "docs" / page).read_text()
        for number, code in enumerate(CODE_BLOCK.findall(text)):
            if "DAG(" in code or "@dag" in code:
                examples.append((f"{page}#{number}", code))
    return examples


def test_every_page_has_examples() -> None:
    pages = {name.split("#")[0] for name, _ in _dag_examples()}
    assert pages == set(PAGES)


@pytest.mark.parametrize(
    ("name", "code"), _dag_examples(), ids=[name for name, _ in _dag_examples()]
)
def test_example_dag_parses(name: str, code: str, tmp_path: Path) -> None:
    from immuta_provider._compat import event_scheduling_unavailable

    if "immuta_sync_completed_asset" in code and event_scheduling_unavailable():
        pytest.skip("the sync watcher needs Airflow 3.3 (test_sync_watcher_availability)")
    # On 2.11 the airflow.sdk imports become the 2.11 ones of docs/installation.md.
    dag_file = tmp_path / "example_dag.py"
    dag_file.write_text(authoring_source(code))
    bag = dag_bag(dag_file)
    assert bag.import_errors == {}, name
    assert len(bag.dags) == 1, name
    (dag,) = bag.dags.values()
    assert dag.tasks, name
