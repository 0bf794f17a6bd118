"""The release deadline's cost model against the work it must cover, over adversarial shapes.

    python -m benchmarks.release_floor --rows N [--shapes LIST] [--json]

``enclave/engine/release_timing.py`` holds every result back until a deadline computed from the
policy alone: ``PER_ROW_S_BY_KIND[kind]`` seconds per declared row of the joined datasets, plus
the cells and a fixed part. The deadline hides the data only if no data a party can upload
makes the work outlast it (an overrun shows up, as the next doubling). This measures that work:
for each shape below, ``N`` rows per dataset go through the real upload path into a real
``Session`` whose datasets declare ``max_rows = N``, then every named analysis, template and
demo SQL query of both example policies runs through ``Session.query`` with the release padding
switched off and the keyed-id cache emptied first (the model assumes none is cached). Each
query's work and its deadline are read where the enclave reads them (``wait_for_release``'s
arguments, on the session's clock); the report gives, per deadline kind (templates and SQL plans
by ``release_timing.plan_cost_kind``), the smallest margin (deadline / work) and the worst cost
per declared row (work / 2N). A margin below 1 is an overrun on this machine.

Shapes (``--shapes``): ``typical`` (datagen's defaults: 30% of users shared, 4 and 2.5 rows per
user), ``all-matched`` (every user on both sides, 1 row per user: the most persons),
``bounded`` (every user on both sides, 8 rows per user: contribution bounds bind),
``few-users`` (every row matched, 1,000 users: the longest runs per person) and ``disjoint``
(no user shared). Crafted id prefixes are not a shape here: ids are re-keyed inside the enclave
before the join (``tests/adversarial/test_join_timing.py`` covers them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_policy import EXAMPLE_POLICY
from benchmarks.datagen import Shape
from benchmarks.measure import loadavg
from benchmarks.memory_probe import ask, every_query, loaded_session
from enclave.engine import analyses, plan_run
from enclave.engine.release_timing import PER_ROW_S, PER_ROW_S_BY_KIND, plan_cost_kind
from protocol.query_plan import parse_plan
from protocol.templates import instantiate

__all__ = ["POLICIES", "SHAPES", "measure", "summary"]

POLICIES = (EXAMPLE_POLICY, EXAMPLE_POLICY.with_name("advertiser-publisher-events.toml"))


def _shape(name: str, rows: int) -> Shape:
    if name == "typical":
        return Shape(rows)
    if name == "all-matched":
        return Shape(rows, overlap=1.0, publisher_rows_per_user=1.0, advertiser_rows_per_user=1.0)
    if name == "bounded":
        return Shape(rows, overlap=1.0, publisher_rows_per_user=8.0, advertiser_rows_per_user=8.0)
    if name == "few-users":
        per_user = max(1.0, rows / 1000)
        return Shape(rows, overlap=1.0, publisher_rows_per_user=per_user,
                     advertiser_rows_per_user=per_user)
    if name == "disjoint":
        return Shape(rows, overlap=0.0)
    raise ValueError(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")


SHAPES = ("typical", "all-matched", "bounded", "few-users", "disjoint")


def _kind(policy: Any, analysis: str, params: dict[str, Any], plan: dict[str, Any] | None) -> str:
    """The cost kind the enclave pads this query as (``release_timing``)."""
    if plan is not None:
        return plan_cost_kind(parse_plan(plan))
    named = next((a for a in policy.analyses if a.id == analysis), None)
    if named is not None:
        return str(named.kind)
    template = next(t for t in policy.templates if t.id == analysis)
    return plan_cost_kind(parse_plan(instantiate(template, params)))


class _Padding:
    """Records what ``wait_for_release`` sees: the work's duration on the session's clock and
    the deadline, exactly as the enclave computes them (then pads nothing)."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    def __call__(self, started: float, deadline_s: float, *, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> float:
        self.seen.append((clock() - started, deadline_s))
        return deadline_s


def measure(rows: int, shape_name: str, policy_path: Path) -> list[dict[str, Any]]:
    """Every query of one policy on one shape (fresh session): its work and its deadline."""
    session, policy, keys = loaded_session(policy_path, _shape(shape_name, rows))
    declared = sum(d.max_rows for d in policy.datasets if d.name in policy.join)
    # a probe's reach into the session: to empty each table's keyed-id cache before every query
    tables = session._state.tables if session._state is not None else {}
    padding = _Padding()
    out = []
    with _patched(padding):
        for party, analysis, params, plan, sql in every_query(policy):
            for table in tables.values():
                table._keyed = None  # the deadline assumes no keyed ids are cached
            ask(session, policy, keys[party], "" if plan is not None else analysis, params, plan, sql)
            work, deadline = padding.seen.pop()
            out.append({"policy": policy_path.name, "shape": shape_name, "query": analysis,
                        "kind": _kind(policy, analysis, params, plan), "work_s": work,
                        "deadline_s": deadline, "margin": deadline / work,
                        "us_per_row": work / declared * 1e6})
    return out


@contextlib.contextmanager
def _patched(padding: _Padding) -> Iterator[None]:
    saved = analyses.wait_for_release, plan_run.wait_for_release
    analyses.wait_for_release = plan_run.wait_for_release = padding
    try:
        yield
    finally:
        analyses.wait_for_release, plan_run.wait_for_release = saved


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per deadline kind: the smallest margin (deadline / work), where, the worst cost per row
    and the model's constant per row."""
    kinds: dict[str, dict[str, Any]] = {}
    for run in runs:
        worst = kinds.get(run["kind"])
        if worst is None or run["margin"] < worst["margin"]:
            kinds[run["kind"]] = {"margin": run["margin"], "at": f"{run['query']} on {run['shape']}",
                                  "work_s": run["work_s"], "deadline_s": run["deadline_s"],
                                  "model_us_per_row": PER_ROW_S_BY_KIND.get(run["kind"], PER_ROW_S) * 1e6}
        kinds[run["kind"]]["worst_us_per_row"] = max(
            run["us_per_row"], kinds[run["kind"]].get("worst_us_per_row", 0.0))
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.release_floor",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N",
                        help="rows per dataset, also each dataset's declared max_rows")
    parser.add_argument("--shapes", default=",".join(SHAPES), metavar="LIST",
                        help=f"comma-separated, from: {', '.join(SHAPES)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    loads = {"start": loadavg()}
    shapes = args.shapes.split(",")
    unknown = [name for name in shapes if name not in SHAPES]
    if unknown:  # before any work
        parser.error(f"--shapes: unknown {', '.join(map(repr, unknown))}; known: {', '.join(SHAPES)}")
    for shape_name in shapes:
        for policy_path in POLICIES:
            runs += measure(args.rows, shape_name, policy_path)
            if not args.json:
                print(f"{shape_name} / {policy_path.name}: done (load {loadavg()})", file=sys.stderr)
        loads[shape_name] = loadavg()
    report = {"rows_per_dataset": args.rows, "load_avg": loads, "runs": runs,
              "kinds": summary(runs)}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.rows:,} rows per dataset (declared = uploaded): work, deadline, µs per declared row")
    for run in runs:
        print(f"  {run['shape']:12s} {run['query']:24s} {run['kind']:20s} {run['work_s']:8.3f} s "
              f"{run['deadline_s']:8.3f} s {run['us_per_row']:6.3f}")
    for kind, k in report["kinds"].items():
        print(f"{kind:20s} margin {k['margin']:5.2f} ({k['at']}: {k['work_s']:.3f} s of "
              f"{k['deadline_s']:.3f} s); worst {k['worst_us_per_row']:.3f} µs per row, model "
              f"{k['model_us_per_row']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
