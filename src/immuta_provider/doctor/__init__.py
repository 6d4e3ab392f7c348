"""``immuta-doctor``: does the provider fit this Immuta tenant? (also ``python -m
immuta_provider.doctor``)

It reads a tenant the way the provider would, and says in one run what differs from what the
provider assumes (API-NOTES.md, *Meeting a real tenant*) and which connection extras fix it:

* ``probe.py``: the read-only sampling (GETs, the auth exchange and ``_search`` only; anything
  else is refused before it is sent), keeping the raw answers;
* ``checks.py``: the checks over that sample, and the extras they suggest;
* ``report.py``: the terminal table and the JSON report;
* ``cli.py``: the command line (``--conn-id`` imports Airflow, nothing else does).

The API key and any token appear nowhere in its output or report.
"""
