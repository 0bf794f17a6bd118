"""What one privacy unit can change in each released vector, per analysis kind, from the policy alone.

Each function below returns an analysis's released vectors as ``Statistic`` values (length,
cells one unit touches, and by how much at most); ``accounting.calibrate`` turns them into exact
noise parameters. The bounds hold because the enclave's query engine enforces them before any
noise is added (``enclave/engine/bounding.py``: ``bound_contributions`` keeps ≤ L0 cohorts per
unit and ≤ Linf rows per unit and cohort; ``per_user_metric`` keeps ≤ Linf rows per unit, each
clamped to [lo, hi], C = max(|lo|, |hi|)). This is the one derivation of these sensitivities: the
analysis modules point here. It reads no data, so the party's ``policy lint`` runs exactly the
enclave's arithmetic.
"""

from __future__ import annotations

from protocol.policy import Analysis, Metric, Privacy
from protocol.privacy.accounting import Statistic

__all__ = ["keys_per_unit", "statistics"]


def keys_per_unit(kind: str, privacy: Privacy, n_cohorts: int) -> int:
    """How many thresholded cohort keys one unit can hold in a query of ``kind``.

    A unit holds at most L0 cohorts of a query, and never more cohorts than exist; an
    activation has a single cohort.
    """
    if kind == "cohort_activation":
        return 1
    return min(privacy.max_cohorts_per_user, n_cohorts)


def statistics(analysis: Analysis, privacy: Privacy, metric: Metric | None,
               n_cohorts: int) -> list[Statistic]:
    """The released vectors of one query shape; see each kind's function for its derivation."""
    kind = analysis.kind
    if kind in ("overlap", "aggregate"):
        return _counts(analysis, privacy, metric, n_cohorts)
    if kind == "reach_frequency":
        return _reach_frequency(analysis, privacy, n_cohorts)
    if kind == "attribution":
        return _attribution(privacy, metric, n_cohorts)
    if kind == "cohort_activation":
        return _activation()
    raise ValueError(f"unknown analysis kind {kind!r}")


def _counts(analysis: Analysis, privacy: Privacy, metric: Metric | None,
            n_cohorts: int) -> list[Statistic]:
    """``overlap`` and ``aggregate``; a unit is in at most k = min(L0, cohorts) cohorts:

    * ``users``: 1 in each of k cohorts                              -> cells_per_unit k, per_cell 1
    * ``rows``:  ≤ Linf in each of k cohorts                         -> per_cell Linf
    * ``sum``:   its clamped total ≤ Linf·C, once per cohort it is in -> per_cell Linf·C

    Released means are noisy sum / noisy users: post-processing, no extra cost.
    """
    k, linf = keys_per_unit(analysis.kind, privacy, n_cohorts), privacy.max_rows_per_user
    stats = [Statistic("users", n_cohorts, k, 1)]
    if analysis.kind == "aggregate":
        if metric is None:
            raise ValueError("an aggregate needs a metric")
        c = max(abs(metric.min), abs(metric.max))
        stats += [Statistic("rows", n_cohorts, k, linf), Statistic("sum", n_cohorts, k, linf * c)]
    return stats


def _reach_frequency(analysis: Analysis, privacy: Privacy, n_cohorts: int) -> list[Statistic]:
    """``reach_frequency``: after bounding, a unit's frequency in a cohort is its number of kept
    rows, and it falls in exactly one bucket 1, 2, ..., F-1, "F or more" of each of its ≤ k cohorts:

    * ``reach``:     1 in each of k cohorts               -> cells_per_unit k, per_cell 1
    * ``frequency``: 1 in one bucket of each of k cohorts -> cells_per_unit k, per_cell 1

    Frequencies above Linf cannot occur (the policy requires F ≤ Linf), so the cap loses nothing
    the bounding has not already removed.
    """
    k, f = keys_per_unit(analysis.kind, privacy, n_cohorts), analysis.max_frequency
    if f is None:
        raise ValueError("reach_frequency needs max_frequency")
    return [Statistic("reach", n_cohorts, k, 1), Statistic("frequency", n_cohorts * f, k, 1)]


def _attribution(privacy: Privacy, metric: Metric | None, n_cohorts: int) -> list[Statistic]:
    """``attribution``: one cell per exposure cohort plus one "all converters" cell. A converter
    touches at most its k = min(L0, cohorts) exposed cells and the total, so cells_per_unit = k + 1:

    * ``converters``:  per_cell 1
    * ``conversions``: per_cell Linf (its rows, at most Linf kept)
    * ``value``:       per_cell Linf·C (their sum, each clamped to [lo, hi])

    Unexposed = noisy total - noisy exposed (post-processing): one cheap total instead of a second
    set of per-cohort cells that every converter would touch.
    """
    if metric is None:
        raise ValueError("attribution needs a metric")
    k, linf = keys_per_unit("attribution", privacy, n_cohorts) + 1, privacy.max_rows_per_user
    c = max(abs(metric.min), abs(metric.max))
    cells = n_cohorts + 1
    return [Statistic("converters", cells, k, 1), Statistic("conversions", cells, k, linf),
            Statistic("value", cells, k, linf * c)]


def _activation() -> list[Statistic]:
    """``cohort_activation``: the cohort's size gates the release; its distinct matched units are
    one cell, and a unit adds 1 to it (cells_per_unit 1, per_cell 1). The identifiers released
    after the gate are not protected by DP at all (see ``enclave/engine/analysis_activation.py``).
    """
    return [Statistic("cohort_size", 1, 1, 1)]
