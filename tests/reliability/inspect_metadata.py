"""Print the `trigger` table as one JSON line, kwargs decrypted with Airflow's own ORM.

Run by the harness as a subprocess with the cluster's environment (AIRFLOW_HOME, database URL,
Fernet key), so that the test process never has to configure Airflow itself.
"""

from __future__ import annotations

import json

from airflow.models.trigger import Trigger
from airflow.utils.session import create_session


def main() -> None:
    rows = []
    with create_session() as session:
        for trigger in session.query(Trigger).order_by(Trigger.id):
            rows.append(
                {
                    "id": trigger.id,
                    "classpath": trigger.classpath,
                    "triggerer_id": trigger.triggerer_id,
                    "created_date": trigger.created_date.isoformat(),
                    "kwargs": trigger.kwargs,
                }
            )
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
