"""How a verified result is shown to people: an aligned text table with a ± per noised cell.

The cells, their intervals and the notes come from ``cleanroom.result_cells``; numbers and times
are formatted by ``cleanroom.formatting``, the same way in every command. An activation's
identifiers are never printed here (thousands of digests are no table): the table says how many
were released and how to write them to a file.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cleanroom.formatting import amount_text, count_text, fraction_decimal, iso_utc, number_text
from cleanroom.result_cells import Column, ResultView, label_text, result_view
from cleanroom.result_open import Result

__all__ = ["cell_text", "jsonable", "render_table"]

_PLUS_MINUS = "±"


def jsonable(value: Any) -> Any:
    """``value`` with bytes as hex, so ``json.dumps`` can print a result document."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return number_text(value)


def cell_text(column: Column, value: Any) -> str:
    """One cell as a table shows it (thousands separators; a column's decimals for amounts; a nil
    group key as ``NIL_LABEL``)."""
    if column.kind == "label":
        return label_text(value)
    if value is None:
        return ""
    if column.kind in ("amount", "mean") and isinstance(value, Decimal):
        return amount_text(value, column.places)
    if column.kind == "count" and isinstance(value, int):
        return count_text(value)
    return _text(value)


def _table_lines(view: ResultView) -> list[str]:
    header: list[str] = []
    numeric: list[bool] = []
    for column in view.columns:
        header.append(column.name)
        numeric.append(column.kind != "label")
        if column.kind in ("count", "amount", "mean") and view.has_intervals:
            header.append(_PLUS_MINUS)
            numeric.append(True)
    cells = []
    for row, widths in zip(view.rows, view.intervals, strict=True):
        line = []
        for column, value, width in zip(view.columns, row, widths, strict=True):
            line.append(cell_text(column, value))
            if column.kind in ("count", "amount", "mean") and view.has_intervals:
                line.append(cell_text(column, width))
        cells.append(line)
    sizes = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(values: list[str]) -> str:
        # Numbers right-aligned, labels left-aligned: the usual way to read a table.
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, sizes, numeric, strict=True)).rstrip()

    return [line(header), "  ".join("-" * w for w in sizes), *(line(r) for r in cells)]


def _privacy_lines(body: dict[str, Any], view: ResultView) -> list[str]:
    privacy = dict(body["privacy"])
    remaining = privacy.get("budget_remaining", "?")
    if isinstance(remaining, dict):
        remaining = ", ".join(f"{k} {fraction_decimal(v)}" for k, v in remaining.items())
    charged = f"epsilon charged {fraction_decimal(privacy.get('epsilon_charged', '?'), up=True)}"
    if "rho_charged" in privacy:
        charged = (f"rho charged {fraction_decimal(privacy['rho_charged'], up=True)} "
                   f"(epsilon {fraction_decimal(privacy.get('epsilon_charged', '?'), up=True)} "
                   f"at delta {fraction_decimal(privacy.get('epsilon_at_delta', '?'), up=True)})")
    out = [f"privacy: mechanism {privacy.get('mechanism', '?')}, {charged}, budget remaining {remaining}",
           f"         suppressed cohorts {_text(privacy.get('suppressed_cohorts', '?'))}"
           f" of {_text(privacy.get('cohorts_total', '?'))}"
           f" (minimum cohort size {_text(_min_size(privacy))}"
           + (f", threshold tau {_text(privacy['threshold'])}: private cohort keys"
              if privacy.get("threshold") is not None else "") + ")"]
    if view.kind == "cohort_activation":
        out.append("         the identifiers are NOT protected by differential privacy")
    elif view.has_intervals:
        out.append("         counts and sums carry calibrated noise; ± is the 95% interval of the noise "
                   "in each cell")
    else:
        out.append("         counts and sums carry calibrated noise; they are not exact values")
    return out


def _min_size(privacy: dict[str, Any]) -> Any:
    """The release gate: a named analysis's min_cohort_size, a SQL query's min_persons."""
    return privacy.get("min_cohort_size", privacy.get("min_persons", "?"))


def _heading(body: dict[str, Any]) -> list[str]:
    if body.get("kind") != "plan":
        return [f"{body['analysis']} ({body['kind']}), query {body['query_id'].hex()}"]
    params = body.get("params") or {}
    sql = params.get("sql")  # signed with the answer: show what was asked
    if body.get("analysis"):  # a template of the policy, with the values this request gave
        chosen = params.get("template_params")
        values = "; ".join(f"{k} = {(', '.join(map(str, v)) or 'none') if isinstance(v, list) else v}"
                           for k, v in chosen.items()) if isinstance(chosen, dict) else ""
        lines = [f"{body['analysis']} (template{': ' + values if values else ''}), "
                 f"query {body['query_id'].hex()}"]
    else:
        lines = [f"SQL query (plan), query {body['query_id'].hex()}"]
    if isinstance(sql, str):
        lines += ["  " + line.rstrip() for line in sql.strip().splitlines()]
    return lines


def _activation_lines(body: dict[str, Any], view: ResultView) -> list[str]:
    privacy = body["privacy"]
    size = privacy.get("noisy_cohort_size")
    lines = [f"{count_text(len(view.rows))} identifiers released (your own SHA-256 digests"
             + (", a uniform sample" if privacy.get("identifiers_sampled") else "") + ")"]
    if isinstance(size, int):
        lines.append(f"noisy cohort size {count_text(size)}")
    if view.rows:
        # Fetching the stored result again is free; running the query again would be charged.
        lines.append(f"write them to a file (no new charge): `cleanroom results get "
                     f"{body['query_id'].hex()} --output ids.csv`, then map them to your own rows "
                     "with `cleanroom match-back ids.csv --input YOUR_FILE --dataset DATASET`")
    return lines


def render_table(result: Result) -> str:
    """The released rows as an aligned table, with a footer saying how to read them."""
    body = result.body
    view = result_view(body)
    out = [*_heading(body),
           f"created {iso_utc(body.get('created_at'))}, requested by {body.get('requested_by', '?')}"]
    if view.kind == "cohort_activation":
        out += _activation_lines(body, view)
    else:
        out += _table_lines(view)
        if not view.rows:
            out.append("(no cohort passed the minimum cohort size)")
        out += view.notes
    out.append("")
    out += _privacy_lines(body, view)
    out.append(f"simulated: {'true - NO SGX HARDWARE; for testing only' if body['simulated'] else 'false'}")
    return "\n".join(out)
