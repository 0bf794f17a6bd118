"""How a verified result is shown to people: an aligned text table, or JSON-ready values."""

from __future__ import annotations

from typing import Any

from cleanroom.result_open import Result

__all__ = ["jsonable", "render_table"]


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
        return value.hex()  # activated identifiers: the party's own SHA-256 digests
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_table(result: Result) -> str:
    """An aligned text table of the released rows, with a footer saying how to read them."""
    body = result.body
    header = [str(c) for c in body["columns"]]
    cells = [[_text(v) for v in (row if isinstance(row, list) else [row])] for row in body["rows"]]
    widths = [len(h) for h in header]
    for row in cells:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(cell))

    def line(values: list[str]) -> str:
        # Numbers right-aligned, labels left-aligned: the usual way to read a table.
        parts = [v.rjust(w) if v[:1].isdigit() or v[:1] == "-" else v.ljust(w)
                 for v, w in zip(values, widths, strict=False)]
        return "  ".join(parts).rstrip()

    out = [f"{body['analysis']} ({body['kind']}), query {body['query_id'].hex()[:16]}",
           line(header), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    if not cells:
        out.append("(no cohort passed the minimum cohort size)")
    privacy = dict(body["privacy"])
    out.append("")
    out.append(f"privacy: mechanism {privacy.pop('mechanism', '?')}, "
               f"epsilon charged {privacy.pop('epsilon_charged', '?')}, "
               f"budget remaining {_text(privacy.pop('budget_remaining', '?'))}")
    out.append(f"         suppressed cohorts {_text(privacy.pop('suppressed_cohorts', '?'))}"
               f" of {_text(privacy.pop('cohorts_total', '?'))}"
               f" (minimum cohort size {_text(privacy.pop('min_cohort_size', '?'))})")
    out.append("         counts and sums carry calibrated noise; they are not exact values")
    out.append(f"simulated: {'true - NO SGX HARDWARE; for testing only' if body['simulated'] else 'false'}")
    return "\n".join(out)
