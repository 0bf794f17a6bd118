"""A template's parameters in its SQL: ``IN (:values)`` in WHERE, ``GROUP BY :by`` and ``SELECT :by``.

docs/query-language.md#templates. A template's SQL is compiled once, by whoever writes or lints
the policy, to the plan the parties sign; a parameter stands for what each request chooses:

* ``col IN (:name)``: declared values of ``col`` (``{"param": name}`` as the predicate's values);
* ``GROUP BY :name``: 0..max of the columns ``[templates.params]`` lists (``{"param": name}`` as
  a ``group_by`` entry). ``SELECT :name`` stands for the chosen columns and, like a selected
  group column, adds nothing to the plan; it is allowed only for a GROUP BY parameter, since
  nothing else could say which columns it is.

Free-form SQL has no parameters: the enclave runs exactly the plan a request carries.
"""

from __future__ import annotations

import re

from sqlglot import exp

from cleanroom.sql.syntax import Source

__all__ = ["GROUP_PARAMETER", "PARAMETER", "group_parameter", "parameter_name", "selected_parameter"]

PARAMETER = "{param}"  # a group key's "trunc" slot for a GROUP BY parameter (no unit is named so)
GROUP_PARAMETER = "GROUP BY"  # what compile_template reports for a GROUP BY parameter's name
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_ONLY_TEMPLATES = "parameters belong to a policy template's SQL (docs/query-language.md#templates)"

Key = tuple[str, str | None, str]  # as in compiler.py: (dataset.column, trunc, output name)


def parameter_name(source: Source, node: exp.Placeholder, where: dict[str, str] | None) -> str:
    """The name of ``:name``; refused outside a template (``where`` None) or without a name."""
    name = node.this if isinstance(node.this, str) else ""
    if where is None:
        source.refuse(node, f"the parameter :{name}" if name else "a ? parameter", _ONLY_TEMPLATES)
    if not _NAME.match(name):
        source.refuse(node, "a parameter without a name", "a parameter is :name, e.g. IN (:regions)")
    return name


def group_parameter(source: Source, node: exp.Placeholder, where: dict[str, str] | None) -> Key:
    """``GROUP BY :name`` as a group key (``where``: the template's WHERE parameters so far)."""
    name = parameter_name(source, node, where)
    if where is not None and name in where:
        source.refuse(node, f"GROUP BY :{name}", f":{name} is already the values of {where[name]} in "
                      "WHERE; a GROUP BY parameter takes a name of its own")
    return f":{name}", PARAMETER, name


def selected_parameter(source: Source, item: exp.Expression, node: exp.Placeholder,
                       where: dict[str, str] | None, group_by: list[Key]) -> None:
    """``SELECT :name``: the chosen columns of a GROUP BY parameter, under their own names."""
    name = parameter_name(source, node, where)
    if (f":{name}", PARAMETER, name) not in group_by:
        source.refuse(item, f"SELECT :{name}", f"SELECT :name stands for the columns a GROUP BY "
                      f"parameter chooses: the query must GROUP BY :{name}")
    if isinstance(item, exp.Alias):
        source.refuse(item.args.get("alias"), f"renaming :{name}",
                      "the result names the chosen columns by their own names")
