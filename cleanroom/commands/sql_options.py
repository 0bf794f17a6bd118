"""``cleanroom query --sql / --sql-file / --explain``: the free-form side of ``cleanroom query``.

``cleanroom/commands/query.py`` registers these arguments and calls ``free_form`` once the policy
and keys are read. The SQL is compiled and checked against the rules here, before the
attestation round trip, so a query outside the rules costs one local error and nothing else;
``--explain`` prints what the query would release and cost and never opens a connection (so
it needs no ``--host``; ``--party`` may stand in for ``--keys``, since only the requester's id
matters to the rules). ``--lift TEST:CONTROL`` is checked against the query here too, so a
wrong one costs nothing; the lift itself is computed from the result (``cleanroom/lift.py``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import UsageError
from protocol.policy import Policy

__all__ = ["FreeForm", "add_query_source", "free_form", "requester"]


def add_query_source(parser: argparse.ArgumentParser) -> None:
    """ANALYSIS, or --sql / --sql-file (exactly one: argparse refuses none or two), and --explain."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("analysis", metavar="ANALYSIS", nargs="?",
                        help="analysis id from the policy, e.g. overlap (or --sql / --sql-file)")
    source.add_argument("--sql", metavar="QUERY",
                        help="a query in the clean room's SQL dialect (docs/query-language.md), e.g. "
                             "\"SELECT i.campaign, COUNT(DISTINCT person) AS users FROM impressions i "
                             "JOIN conversions c GROUP BY i.campaign\"")
    source.add_argument("--sql-file", type=Path, metavar="FILE", help="read the --sql query from FILE")
    parser.add_argument("--explain", action="store_true",
                        help="with --sql: print the plan, the rules it passes, the charge per dataset "
                             "and the noise of every output column; sends nothing, spends no budget "
                             "and needs no --host")
    parser.add_argument("--party", metavar="PARTY",
                        help="with --explain: explain the query as this party of the policy would "
                             "run it, instead of the one --keys names")
    parser.add_argument("--lift", metavar="TEST:CONTROL",
                        help="with --sql grouped by an arm column and selecting COUNT(DISTINCT "
                             "i.person): print each arm's conversion rate and the lift of arm TEST "
                             "over arm CONTROL, with 95%% intervals (docs/query-language.md, Lift)")


@dataclass(frozen=True)
class FreeForm:
    """What ``Client.query`` sends for a compiled query: analysis "", params {}, plan and SQL."""

    analysis: str
    params: dict[str, Any]
    request: dict[str, Any] = field(default_factory=dict)  # plan= and sql= for Client.query
    lift: tuple[str, str] | None = None  # --lift: the test and control arm values


def requester(args: argparse.Namespace, keys_party: Any) -> str:
    """Who the query is compiled for: ``--party`` (with --explain only), else the keys' party.

    ``keys_party`` is called only when there is no ``--party``, so explaining needs no key file.
    """
    if args.party is not None:
        if not args.explain:
            raise UsageError("--party is for --explain; a query is signed with the party's --keys")
        return str(args.party)
    return str(keys_party())


def _lift_arms(args: argparse.Namespace) -> tuple[str, str] | None:
    if args.lift is None:
        return None
    test, sep, control = str(args.lift).partition(":")
    if not sep or not test or not control or ":" in control:
        raise UsageError(f"--lift wants TEST:CONTROL, two values of the arm column, not {args.lift!r}")
    return test, control


def _sql_text(args: argparse.Namespace) -> str | None:
    if args.sql_file is not None:
        try:
            return Path(args.sql_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--sql-file {args.sql_file}: cannot read it ({exc})") from None
    return args.sql


def free_form(args: argparse.Namespace, policy: Policy, party_id: str) -> FreeForm | None:
    """None for a named analysis; else the compiled, checked query (``args.explain``: printed).

    :raise UsageError: --explain without SQL, template flags with SQL, an unreadable --sql-file.
    :raise InvalidInput: the SQL is outside the dialect (the message names the construct).
    :raise PolicyViolation: the rules refuse it (the enclave's message).
    """
    sql = _sql_text(args)
    if sql is None:  # argparse saw to it that ANALYSIS is given instead
        if args.explain:
            raise UsageError("--explain explains a --sql or --sql-file query")
        if args.lift is not None:
            raise UsageError("--lift computes the lift of a --sql or --sql-file query")
        return None
    arms = _lift_arms(args)
    if args.group_by or args.metric is not None or args.cohort:
        raise UsageError("--group-by, --metric and --cohort belong to named analyses; "
                         "write GROUP BY and the aggregates in the SQL")
    from cleanroom.sql import compile_query
    from cleanroom.sql.explain import explain, render_explain

    query = compile_query(sql, policy, party_id)
    if arms is not None:
        from cleanroom.lift import check_lift_query

        check_lift_query(query.plan, policy, *arms)
    if args.explain:
        print(render_explain(explain(query, policy), as_json=bool(getattr(args, "json", False))))
        sys.stdout.flush()
    return FreeForm("", {}, {"plan": query.wire, "sql": query.sql}, arms)
