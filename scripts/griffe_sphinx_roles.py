"""Griffe extension for the docs site: Sphinx cross-reference roles as plain code.

Our docstrings are Sphinx style (``:param x:``), which Airflow renders, and they refer to other
objects with roles such as ``:class:`ImmutaTaskRunSensor``` or ``:meth:`get_client```.
mkdocstrings parses the parameters but leaves the roles as literal text; this rewrites each role
to inline code (``~a.b.C`` shows as ``C``, as in Sphinx). Loaded by mkdocs.yml.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:class|meth|attr|func|mod|exc|data|obj|const):`(~?)([^`]+)`")


def strip_roles(text: str) -> str:
    """``:class:`~pkg.Name``` -> ```Name```; ``:meth:`pkg.Class.run``` -> ```pkg.Class.run```."""

    def replace(match: re.Match[str]) -> str:
        short, target = match.groups()
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"

    return ROLE.sub(replace, text)


class SphinxRoles(Extension):
    """Rewrites the roles in every docstring as it is loaded."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        """Called by Griffe for each module, class, function and attribute it loads."""
        if obj.docstring is not None:
            obj.docstring.value = strip_roles(obj.docstring.value)
