"""Checks a party can make on its own machine before the attestation round trip.

The enclave decides (``enclave/requests/authorization.py``): these checks only catch mistakes
early and say what would have been valid, naming the closest match. They read the party's copy
of the policy and its own files, nothing else, so their messages may name values: everything
they name is in the policy or the party's own command line. They never accept what the enclave
would refuse for the reasons checked here, but the enclave stays the authority on everything.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import Analysis, Policy
from protocol.policy_model import Template

__all__ = ["check_input_file", "check_own_dataset", "check_query", "check_template_query"]

_NEEDS_METRIC = ("aggregate", "attribution")
_NEEDS_GROUP_BY = ("aggregate", "attribution")


def _choices(given: str, valid: Iterable[str], what: str) -> str:
    """`` did you mean 'x'? The <what> are: a, b, c`` for a message about ``given``."""
    valid = list(valid)
    # "dataset.column": compare the columns, or a shared dataset prefix makes anything look close.
    def key(text: str) -> str:
        return text.partition(".")[2] if "." in given and "." in text else text

    keys = {key(v): v for v in valid}
    close = [keys[k] for k in difflib.get_close_matches(key(given), list(keys), n=1, cutoff=0.6)]
    if not close:  # a case or spacing slip is the commonest mistake; difflib misses short ones
        close = [v for v in valid if v.casefold() == given.strip().casefold()][:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(valid) if valid else "(none)"
    return f"{hint} The {what}: {listed}"


def _analysis(policy: Policy, party_id: str, analysis_id: str) -> Analysis:
    analysis = policy.analysis(analysis_id)
    if analysis is None:
        mine = [a.id for a in policy.analyses if party_id in a.requesters]
        mine += [t.id for t in policy.templates if party_id in t.requesters]
        raise PolicyViolation(f"the policy has no analysis {analysis_id!r} (nor a template of that name)"
                              + _choices(analysis_id, mine,
                                         f"analyses and templates {party_id!r} may run are"))
    if party_id not in analysis.requesters:
        raise PolicyViolation(f"party {party_id!r} may not run analysis {analysis_id!r}; its "
                              f"requesters are: {', '.join(analysis.requesters)}")
    return analysis


def _group_by(analysis: Analysis, group_by: list[str]) -> None:
    allowed = [str(ref) for ref in analysis.group_by]
    for column in group_by:
        if column not in allowed:
            raise PolicyViolation(f"analysis {analysis.id!r} cannot group by {column!r}"
                                  + _choices(column, allowed, "columns it may group by are"))
    if len(set(group_by)) != len(group_by):
        raise PolicyViolation("a column appears twice in --group-by")
    if len(group_by) > analysis.max_group_by:
        raise PolicyViolation(f"analysis {analysis.id!r} groups by at most {analysis.max_group_by} "
                              f"column(s); {len(group_by)} were given")
    if len({column.split(".")[0] for column in group_by}) > 1:
        raise PolicyViolation("--group-by columns must come from one dataset")
    if analysis.kind in _NEEDS_GROUP_BY and not group_by:
        raise PolicyViolation(f"analysis {analysis.id!r} ({analysis.kind}) needs at least one "
                              f"--group-by, one of: {', '.join(allowed)}")
    if analysis.kind == "cohort_activation" and group_by:
        raise PolicyViolation(f"analysis {analysis.id!r} (cohort_activation) takes --cohort, "
                              "not --group-by")


def _metric(analysis: Analysis, metric: str | None) -> None:
    allowed = [str(ref) for ref in analysis.metrics]
    if analysis.kind in _NEEDS_METRIC:
        if metric is None:
            raise PolicyViolation(f"analysis {analysis.id!r} ({analysis.kind}) needs --metric, one "
                                  f"of: {', '.join(allowed)}")
        if metric not in allowed:
            raise PolicyViolation(f"analysis {analysis.id!r} has no metric {metric!r}"
                                  + _choices(metric, allowed, "metrics it allows are"))
    elif metric is not None:
        raise PolicyViolation(f"analysis {analysis.id!r} ({analysis.kind}) takes no --metric")


def _cohort(policy: Policy, analysis: Analysis, cohort: dict[str, str]) -> None:
    if cohort and analysis.kind != "cohort_activation":
        raise PolicyViolation(f"only cohort_activation analyses take --cohort; {analysis.id!r} is "
                              f"{analysis.kind}")
    allowed = [str(ref) for ref in analysis.group_by]
    for column, value in cohort.items():
        if column not in allowed:
            raise PolicyViolation(f"analysis {analysis.id!r} cannot take a cohort on {column!r}"
                                  + _choices(column, allowed, "columns it allows are"))
        dataset_name, _, column_name = column.partition(".")
        dataset = policy.dataset(dataset_name)
        dimension = dataset.dimension(column_name) if dataset else None
        values = list(dimension.values) if dimension else []
        if value not in values:
            raise PolicyViolation(f"{value!r} is not a declared value of {column}"
                                  + _choices(value, values, "declared values are"))
    if len(cohort) > analysis.max_group_by:
        raise PolicyViolation(f"analysis {analysis.id!r} takes a cohort on at most "
                              f"{analysis.max_group_by} column(s)")


def _group_params(template: Template, params: dict[str, Any]) -> None:
    """Each GROUP BY parameter: given, and 0..max distinct of the columns it chooses from."""
    for name, choice in template.group_params.items():
        allowed = [str(c) for c in choice.columns]
        if name not in params:
            raise PolicyViolation(f"template {template.id!r} needs its GROUP BY parameter {name}: up to "
                                  f"{choice.max} of {', '.join(allowed)} (--param {name}=COLUMN,...; "
                                  f"--group-by COLUMN when it is the template's only one; --param "
                                  f"{name}= for one row of everyone)")
        given = params[name]
        for column in given if isinstance(given, list) else []:
            if column not in allowed:
                raise PolicyViolation(f"template {template.id!r} cannot group by {column!r} ({name})"
                                      + _choices(column, allowed, f"columns {name} chooses from are"))
        if isinstance(given, list) and len(set(given)) != len(given):
            raise PolicyViolation(f"template {template.id!r}: a column appears twice in {name}")
        if isinstance(given, list) and len(given) > choice.max:
            raise PolicyViolation(f"template {template.id!r}: {name} takes at most {choice.max} of "
                                  f"{', '.join(allowed)}; {len(given)} were given")


def check_template_query(policy: Policy, party_id: str, template_id: str, params: dict[str, Any]) -> None:
    """A template request as the enclave will check it: its parameters' values, its terms.

    :raise PolicyViolation: the template's terms or a parameter's declared values refuse it.
    :raise ProtocolError: the parameters are not exactly the template's.
    """
    from protocol.query_plan import check_plan, parse_plan
    from protocol.templates import instantiate

    template = policy.template(template_id)
    assert template is not None
    _group_params(template, params)
    plan = parse_plan(instantiate(template, params))
    check_plan(policy, plan, party_id, template=template)


def check_query(policy: Policy, party_id: str, analysis_id: str, params: dict[str, Any]) -> Analysis:
    """Check a query against the party's copy of the policy, before anything is sent.

    ``params`` as ``Client.query`` takes them (``group_by``, ``metric``, ``cohort``).

    :raise PolicyViolation: the policy would refuse it; the message lists what is valid.
    """
    analysis = _analysis(policy, party_id, analysis_id)
    _group_by(analysis, list(params.get("group_by", [])))
    _metric(analysis, params.get("metric"))
    _cohort(policy, analysis, dict(params.get("cohort", {})))
    return analysis


def check_own_dataset(policy: Policy, party_id: str, dataset: str) -> None:
    """``dataset`` is in the policy and owned by ``party_id`` (for upload and delete).

    :raise PolicyViolation: unknown dataset (with the party's own ones listed), or another's.
    """
    found = policy.dataset(dataset)
    mine = [d.name for d in policy.datasets if d.owner == party_id]
    if found is None:
        raise PolicyViolation(f"the policy has no dataset {dataset!r}"
                              + _choices(dataset, mine, f"datasets of {party_id!r} are"))
    if found.owner != party_id:
        raise PolicyViolation(f"dataset {dataset!r} belongs to {found.owner!r}, not {party_id!r}"
                              + _choices(dataset, mine, f"datasets of {party_id!r} are"))


def check_input_file(path: str | os.PathLike[str]) -> None:
    """The file to upload exists and can be read (its content is checked while it is read).

    :raise InvalidInput: it does not exist, is not a regular file, or cannot be opened.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"input file {path} does not exist (relative to {Path.cwd()})"
                           if not path.is_absolute() else f"input file {path} does not exist")
    if not path.is_file():
        raise InvalidInput(f"input file {path} is not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InvalidInput(f"input file {path} cannot be read: {exc.strerror or exc}") from None
