"""The validation report: read a whole file as an upload would, send nothing, say what is wrong.

``validate`` runs the upload's own reading and conversion (``cleanroom.tables``) over the whole
file and counts, per column: rows read, refused cells by reason (with the first few, by line),
values outside the policy's declared list (the most frequent ones, with counts), metrics the
enclave will clamp to the policy's bounds; and for the file: distinct identifiers and exact
duplicate rows (of the uploaded columns, after normalisation). ``--reject-file`` writes every
refused cell with its line, column, reason and value. The report quotes the party's own values:
it is printed on the party's machine and never sent; the only figures that leave it are the
per-column counts of skipped rows, in the signed upload header, with ``--skip-invalid``.

Distinct identifiers and duplicate rows are counted on 64-bit keys (the first 8 bytes of each
SHA-256 digest; a 64-bit mix of a whole row): 8 bytes per row each, and a false match has
probability about rows² / 2⁶⁵ (below 10⁻³ at 100M rows).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cleanroom.conversion import Block, Problem
from cleanroom.tables import Table, describe_problem, open_table, quote
from protocol.errors import InvalidInput
from protocol.policy import Dataset

__all__ = ["ColumnReport", "ValidationReport", "validate"]

_EXAMPLES = 5  # refused cells quoted per column
_TOP = 10  # most frequent undeclared values shown per dimension
_TRACKED = 100_000  # distinct undeclared values counted exactly per dimension; more are "other"
_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class ColumnReport:
    name: str
    role: str  # identifier, dimension or metric
    refused: Counter[str] = field(default_factory=Counter)  # reason -> cells
    examples: list[Problem] = field(default_factory=list)
    undeclared: Counter[str] = field(default_factory=Counter)  # value -> cells (dimensions)
    undeclared_other: int = 0  # cells whose value was not tracked (past _TRACKED values)
    below_min: int = 0  # metrics the enclave clamps up to the policy's min
    above_max: int = 0


@dataclass
class ValidationReport:
    file: str
    rows_read: int = 0
    rows_valid: int = 0
    distinct_ids: int = 0
    duplicate_rows: int = 0
    columns: dict[str, ColumnReport] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # schema column -> rows (as uploaded)
    locations: dict[int, str] = field(default_factory=dict)  # row -> "line N" of the examples
    first_problem: str | None = None  # the message an upload would stop with

    @property
    def ok(self) -> bool:
        return self.rows_valid == self.rows_read

    def lines(self) -> list[str]:
        out = [f"{self.file}: {self.rows_read:,} rows read, {self.rows_valid:,} valid, "
               f"{self.rows_read - self.rows_valid:,} with a refused cell",
               f"  distinct identifiers: {self.distinct_ids:,}; exact duplicate rows: "
               f"{self.duplicate_rows:,} (after normalisation; they are uploaded as they are)"]
        for col in self.columns.values():
            refused = sum(col.refused.values())
            out.append(f"  column {col.name!r} ({col.role}): {refused:,} refused")
            for reason, count in col.refused.most_common():
                out.append(f"    {count:,} x {reason}")
            for problem in col.examples:
                where = self.locations.get(problem.row, f"row {problem.row + 1}")
                shown = "missing" if problem.value is None else quote(problem.value)
                out.append(f"    e.g. {where}: {shown}")
            if col.undeclared:
                top = ", ".join(f"{quote(v)} x {c:,}" for v, c in col.undeclared.most_common(_TOP))
                more = len(col.undeclared) - _TOP
                out.append(f"    undeclared values (most frequent first): {top}"
                           + (f", and {more:,} other values" if more > 0 else "")
                           + (f", and {col.undeclared_other:,} more cells" if col.undeclared_other else ""))
            if col.below_min or col.above_max:
                out.append(f"    the enclave will clamp {col.below_min:,} values up to the policy's "
                           f"min and {col.above_max:,} down to its max")
        if self.skipped:
            out.append("  --skip-invalid would leave out "
                       + ", ".join(f"{n:,} rows for {c!r}" for c, n in self.skipped.items()))
        if self.first_problem:
            out.append(f"first problem: {self.first_problem}")
        return out


class _Collector:
    def __init__(self, table: Table, dataset: Dataset, report: ValidationReport) -> None:
        self.table, self.dataset, self.report = table, dataset, report
        roles = [(dataset.id_column, "identifier")] + [(d.name, "dimension") for d in dataset.dimensions]
        roles += [(m.name, "metric") for m in dataset.metrics]
        roles += [(t.name, "timestamp") for t in dataset.timestamps]
        report.columns = {name: ColumnReport(name, role) for name, role in roles}
        self.id_keys: list[np.ndarray] = []
        self.row_keys: list[np.ndarray] = []
        self.problems: list[Problem] = []

    def add(self, block: Block, keep_all: bool) -> None:
        report, columns = self.report, self.report.columns
        report.rows_read += block.rows
        report.rows_valid += int(block.valid.sum())
        for problem in block.problems:
            col = columns[problem.column]
            col.refused[problem.reason] += 1
            if len(col.examples) < _EXAMPLES:
                col.examples.append(problem)
            if col.role == "dimension" and problem.value is not None:
                if problem.value in col.undeclared or len(col.undeclared) < _TRACKED:
                    col.undeclared[problem.value] += 1
                else:
                    col.undeclared_other += 1
        if keep_all:
            self.problems.extend(block.problems)
        valid = block.valid
        for metric in self.dataset.metrics:
            values = block.columns[metric.name][valid]
            col = columns[metric.name]
            col.below_min += int((values < metric.min).sum())
            col.above_max += int((values > metric.max).sum())
        for stamp in self.dataset.timestamps:  # clamped into the declared range by the enclave
            values = block.columns[stamp.name][valid]
            col = columns[stamp.name]
            col.below_min += int((values < stamp.min).sum())
            col.above_max += int((values > stamp.max).sum())
        ids = np.ascontiguousarray(block.columns["id"][valid][:, :8]).view("<u8").ravel()
        self.id_keys.append(ids)
        key = ids.copy()
        for name, _ in self.dataset.schema()[1:]:
            key = (key ^ block.columns[name][valid].astype(np.uint64)) * _MIX
            key ^= key >> np.uint64(29)
        self.row_keys.append(key)

    def finish(self) -> None:
        ids = np.concatenate(self.id_keys) if self.id_keys else np.zeros(0, np.uint64)
        rows = np.concatenate(self.row_keys) if self.row_keys else np.zeros(0, np.uint64)
        self.report.distinct_ids = int(np.unique(ids).size)
        self.report.duplicate_rows = int(rows.size - np.unique(rows).size)


def validate(path: str | os.PathLike[str], dataset: Dataset, *,
             default_country_code: str | None = None, delimiter: str = ",",
             reject_file: str | os.PathLike[str] | None = None, block_rows: int = 131_072,
             progress: Callable[[Table], None] | None = None) -> ValidationReport:
    """Read all of ``path`` as an upload of ``dataset`` would, and report; nothing is sent.

    :raise InvalidInput: the file itself cannot be read as the dataset (a missing column, a
        ragged line, not UTF-8, more rows than ``max_rows``): those stop everything.
    """
    report = ValidationReport(Path(path).name)
    with np.errstate(over="ignore"), open_table(path, dataset, default_country_code=default_country_code,
                                                delimiter=delimiter, skip_invalid=True) as table:
        collector = _Collector(table, dataset, report)
        for block in table.converted(block_rows):
            collector.add(block, keep_all=reject_file is not None)
            if block.problems:
                table.count_skipped(block)
            if progress is not None:
                progress(table)
        collector.finish()
        report.skipped = dict(table.skipped)
        examples = [p for col in report.columns.values() for p in col.examples]
        wanted = sorted({p.row for p in examples} | {p.row for p in collector.problems})
        report.locations = table.source.locate(wanted) if wanted else {}
        if examples:
            first = min(examples, key=lambda p: p.row)
            report.first_problem = describe_problem(table.source, first, report.locations.get(first.row))
        if reject_file is not None:
            _write_rejects(Path(reject_file), collector.problems, report.locations)
    if report.rows_read == 0:
        raise InvalidInput(f"{report.file}: the file has a header but no rows")
    return report


def _write_rejects(path: Path, problems: list[Problem], locations: dict[int, str]) -> None:
    """Every refused cell: where, column, reason, value (as read; empty when missing)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["location", "column", "reason", "value"])
        for p in sorted(problems, key=lambda p: p.row):
            writer.writerow([locations.get(p.row, f"row {p.row + 1}"), p.column, p.reason,
                             "" if p.value is None else p.value])
