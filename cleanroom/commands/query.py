"""``cleanroom query``: run an analysis the policy allows and print (or save) its result."""

from __future__ import annotations

import argparse
from typing import Any

from cleanroom.client import Client
from cleanroom.commands.arguments import (
    UsageError,
    add_attestation_flags,
    add_host,
    add_key_file,
    add_policy,
    command,
    read_policy,
    require,
)
from cleanroom.commands.output import (
    add_output_flags,
    emit,
    err,
    output_format,
    print_result,
    refuse_existing,
)
from cleanroom.commands.saving import add_save_flag, save_with_hint
from cleanroom.commands.sql_options import FreeForm, add_query_source, free_form, requester
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.commands.waiting import running
from cleanroom.keys import PartyKeys
from cleanroom.preflight import check_query, check_template_query
from protocol.policy_model import Template

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "query", "Run an analysis the policy allows and print its result",
                "Verifies the attestation first, signs the request with your key, opens the "
                "result encrypted to you and checks the enclave's signature on it. Results carry "
                "differential-privacy noise: each cell shows its 95% interval (±), and the footer "
                "says how much budget was spent. A LEFT JOIN query (FROM c LEFT JOIN i) releases "
                "last the persons of c with no i row, their group keys shown as (none). A template "
                "takes --param NAME=VALUE,...; one with a single GROUP BY parameter also takes "
                "--group-by. A cohort_activation's identifiers are written "
                "with --output FILE (CSV), not printed; `cleanroom match-back` maps them to your "
                "own rows.")
    add_host(p, required=False)  # --explain sends nothing: required in _query otherwise
    add_policy(p)
    add_key_file(p, required=False)  # --explain --party needs no key file
    add_query_source(p)  # ANALYSIS, or --sql / --sql-file (cleanroom/commands/sql_options.py)
    p.add_argument("--group-by", action="append", default=[], metavar="DATASET.COLUMN",
                   help="dimension to group by (repeatable); for a template with one GROUP BY "
                        "parameter, the columns it chooses (the same as --param NAME=COL,COL)")
    p.add_argument("--metric", metavar="DATASET.COLUMN", help="metric to sum (aggregate analyses)")
    p.add_argument("--cohort", action="append", default=[], metavar="DATASET.COLUMN=VALUE",
                   help="cohort to activate (cohort_activation analyses; repeatable)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE[,VALUE...]",
                   help="a template's parameter and its values (templates of the policy; repeatable)")
    add_save_flag(p)
    add_output_flags(p)
    add_attestation_flags(p)
    p.set_defaults(func=_query)


def _cohort_pair(text: str) -> tuple[str, str]:
    column, sep, value = text.partition("=")
    if not sep or column.count(".") != 1:
        raise UsageError(f"--cohort wants DATASET.COLUMN=VALUE, not {text!r}")
    return column, value


def _template_params(args: argparse.Namespace, template: Template) -> dict[str, Any]:
    """``--param NAME=V,V`` per parameter; ``--group-by COL`` (repeatable) for the template's
    one GROUP BY parameter, so a template reads like the named analysis it replaces."""
    if args.metric is not None or args.cohort:
        raise UsageError("a template takes --param NAME=VALUE,... (and --group-by for its GROUP BY "
                         "parameter) only: its plan is fixed by the policy")
    params: dict[str, Any] = {}
    for text in args.param:
        name, sep, values = text.partition("=")
        if not sep or not name or name in params:
            raise UsageError(f"--param wants NAME=VALUE[,VALUE...] once per name, not {text!r}")
        params[name] = [v.strip() for v in values.split(",") if v.strip()]
    if args.group_by:
        groups = list(template.group_params)
        if len(groups) != 1:
            raise UsageError(f"--group-by stands for a template's one GROUP BY parameter; {template.id} has "
                             f"{len(groups)} ({', '.join(groups) or 'none'}): give "
                             + (" and ".join(f"--param {g}=COLUMN,..." for g in groups) or "--param only"))
        if groups[0] in params:
            raise UsageError(f"--group-by and --param {groups[0]}= both give {template.id}'s GROUP BY "
                             "parameter: use one of them")
        params[groups[0]] = list(args.group_by)
    return params


def _params(args: argparse.Namespace) -> dict[str, Any]:
    if args.param:
        raise UsageError("--param is for the policy's templates; this is an analysis")
    if args.cohort:
        if args.group_by or args.metric is not None:
            raise UsageError("--cohort (cohort_activation) cannot be combined with --group-by or --metric")
        return {"cohort": dict(_cohort_pair(text) for text in args.cohort)}
    params: dict[str, Any] = {"group_by": list(args.group_by)}
    if args.metric is not None:
        params["metric"] = args.metric
    return params


def _print(result: Any, args: argparse.Namespace, free: FreeForm | None) -> None:
    """The result, and with ``--lift`` the lift after it (in the JSON document as ``lift``)."""
    if free is None or free.lift is None:
        print_result(result, args)
        return
    import json

    from cleanroom.lift import lift_json, lift_report, render_lift
    from cleanroom.result_export import result_json

    fmt = output_format(args, result)
    if fmt != "json":
        print_result(result, args)
    report = lift_report(result.body, *free.lift)  # after printing: a paid result is never lost
    if fmt == "json":
        doc = result_json(result)
        doc["lift"] = lift_json(report)
        emit(json.dumps(doc, indent=2) + "\n", args, f"{len(result.rows):,} rows (json) and the lift")
    elif fmt == "csv" and args.output is None:
        err(render_lift(report))  # stdout is the CSV
    else:
        print(render_lift(report))


def _query(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    keys: PartyKeys | None = None

    def keys_party() -> str:
        nonlocal keys
        keys = PartyKeys.load(require(args, "keys"))
        return keys.party_id

    party = requester(args, keys_party)
    free = free_form(args, policy, party)  # --sql / --sql-file, compiled and checked; else None
    if free is not None and args.explain:
        return 0  # free_form printed the explanation: nothing is sent, nothing is spent
    if keys is None:
        keys = PartyKeys.load(require(args, "keys"))
    template = None if free else policy.template(args.analysis)
    analysis, params, sql = (free.analysis, free.params, free.request) if free else (
        args.analysis, _template_params(args, template) if template else _params(args), {})
    if template is not None:
        check_template_query(policy, keys.party_id, analysis, params)  # before any round trip
    elif free is None:
        check_query(policy, keys.party_id, analysis, params)  # before the attestation round trip
    output_format(args)  # a contradictory --json/--format is a usage error before anything runs
    refuse_existing(args.output, args.save)
    client = Client(require(args, "host"))
    enclave = verify_before_sending(args, client, raw)
    with running("the enclave is running the query (its answer leaves at the release deadline)"):
        result = client.query(enclave, keys, policy, analysis, params, **sql)
    save_with_hint(args, result, client.last_bundle)  # first: the signed result is what is paid for
    _print(result, args, free)
    return 0
