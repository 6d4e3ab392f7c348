"""The emulator's state: connections, data objects, tasks and runs, and how runs move over time.

Three layers, one object: ``store.Store`` holds the records and reads them,
``scheduler.RunScheduler`` moves runs over time (lazily, on a clock), ``resources.ResourceRules``
applies the API's rules to connections, data objects and tasks. ``State`` is all three, and what
the API, the admin API, the seed and the state file work on.
"""

from __future__ import annotations

from .resources import ResourceRules


class State(ResourceRules):
    """All API-visible state of one emulator, plus the counters tests assert on."""
