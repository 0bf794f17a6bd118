"""Validate a collaboration policy and preview what each analysis costs, without any data.

The numbers come from the enclave's own code (``protocol.privacy.plan.privacy_plan``: statistics,
sensitivities, exact noise parameters, τ), so the preview is what the enclave will do, not a
second implementation of it. Noise standard deviations are floats, for people only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cleanroom.policy_rules_lint import render_rules, rule_warnings, rules_section
from cleanroom.policy_templates_lint import render_templates, template_warnings, templates_section
from protocol.errors import PolicyInvalid
from protocol.policy import Analysis, Metric, Policy, parse_policy
from protocol.privacy.accounting import bun_steinke_epsilon, decimal_text
from protocol.privacy.plan import privacy_plan

__all__ = ["LintReport", "lint_policy", "render_text"]


@dataclass
class LintReport:
    valid: bool
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    analyses: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "errors": self.errors, "warnings": self.warnings,
                **self.summary, "analyses": self.analyses}


def _noise_std(mechanism: str, scale: Fraction) -> float:
    if mechanism == "discrete_laplace":  # Var = 2q/(1-q)², q = e^(-1/t)
        q = math.exp(-1 / float(scale))
        return math.sqrt(2 * q) / (1 - q)
    return math.sqrt(float(scale))  # a discrete Gaussian's variance is at most σ²


def _worst_n_cohorts(policy: Policy, analysis: Analysis) -> int:
    """Cohorts of the largest query the analysis allows (the shape that sizes sensitivities)."""
    sizes = sorted((len(policy.dataset(r.dataset).dimension(r.column).values)  # type: ignore[union-attr]
                    for r in analysis.group_by), reverse=True)
    return math.prod(sizes[: analysis.max_group_by]) if analysis.kind != "cohort_activation" else 1


def _metric_label(metric: Metric | None, name: str) -> tuple[int, str]:
    return (metric.scale, f" (in units of 10^-{metric.scale})") if metric and name in (
        "sum", "value") else (0, "")


def _analysis_entry(policy: Policy, analysis: Analysis, metric_ref: Any) -> dict[str, Any]:
    privacy = policy.privacy
    metric = None
    if metric_ref is not None:
        metric = policy.dataset(metric_ref.dataset).metric(metric_ref.column)  # type: ignore[union-attr]
    n_cohorts = _worst_n_cohorts(policy, analysis)
    private = analysis.cohort_keys == "private"
    pp = privacy_plan(analysis, privacy, metric, n_cohorts, private=private)
    statistics = []
    for c in pp.calibrated:
        stat = c.statistic
        scale_digits, unit_note = _metric_label(metric, stat.name)
        statistics.append({
            "statistic": stat.name,
            "sensitivity": stat.l1 if pp.mode == "pure" else None,
            "sensitivity_l2_squared": stat.l2_sq if pp.mode == "zcdp" else None,
            privacy.unit: str(c.share),
            "noise": c.mechanism,
            "noise_scale" if pp.mode == "pure" else "noise_sigma2": str(c.scale),
            "noise_std": round(_noise_std(c.mechanism, c.scale) / 10**scale_digits, 4),
            "noise_std_unit": unit_note.strip() or "count",
        })
    queries = min(privacy.budget[name] // analysis.cost for name in policy.join)
    entry: dict[str, Any] = {
        "id": analysis.id, "kind": analysis.kind, "metric": str(metric_ref) if metric_ref else None,
        "requesters": list(analysis.requesters), "recipients": list(analysis.recipients),
        "worst_case_cohorts": n_cohorts, "cohort_keys": analysis.cohort_keys,
        "threshold": pp.tau, "min_cohort_size": privacy.min_cohort_size,
        "charge_per_query": {privacy.unit: str(analysis.cost), "delta": str(pp.delta),
                             "datasets": list(policy.join)},
        "queries_until_exhausted": int(queries),
        "statistics": statistics,
    }
    if pp.mode == "zcdp":
        entry["charge_per_query"]["epsilon_at_delta"] = decimal_text(
            bun_steinke_epsilon(analysis.cost, privacy.delta))
    # The query's whole guarantee is (ε, δ_total): zCDP's conversion spends privacy.delta, and a
    # private-cohort selection adds its own δ on top (basic composition of the two failure events).
    entry["charge_per_query"]["delta_total"] = str(policy.privacy.conversion_delta + pp.delta)
    return entry



def _budget_delta_total(policy: Policy, dataset: str, analyses: list[dict[str, Any]]) -> Fraction:
    """The largest total δ a dataset's whole budget can accumulate.

    Each query on the dataset spends ``cost`` of its budget and adds δ_selection; whatever mix
    of analyses runs, the selection δ spent is at most budget · max(δ_selection / cost), plus
    the conversion δ once (zCDP composes in ρ and converts the total once).
    """
    total = policy.privacy.budget[dataset]
    charges = [a["charge_per_query"] for a in analyses if dataset in a["charge_per_query"]["datasets"]]
    unit = policy.privacy.unit
    worst = max((Fraction(c["delta"]) / Fraction(c[unit]) for c in charges), default=Fraction(0))
    return policy.privacy.conversion_delta + total * worst


def _warnings(policy: Policy) -> list[str]:
    privacy, out = policy.privacy, []
    biggest = max(d.max_rows for d in policy.datasets)
    if privacy.delta * 10 * biggest >= 1:
        out.append(f"privacy.delta: {privacy.delta} is not below 1/(10 x max_rows) = 1/{10 * biggest}")
    for a in policy.analyses:
        if a.kind == "cohort_activation":
            out.append(
                f"analyses.{a.id}: releases {a.recipients[0]}'s own identifiers of matched people; "
                "that release is not protected by differential privacy, and it is a membership "
                f"oracle: {a.recipients[0]} may upload any identifiers, not only its customers, and "
                "learns for each one whether that person is in the cohort defined by the other "
                "party's data (padding the upload with known members passes the size gate)"
                + ("; the cohort may use only its own dimensions" if a.cohorts_from == "recipient" else "")
                + ("; each activation waits for the other owners' co-signature"
                   if a.approval == "other_owners" else ""))
    if privacy.witness == "none":
        out.append("privacy.witness: 'none': the budget is protected against the host alone, not against "
                   "the host colluding with a party (restoring an old sealed state); 'owners' makes each "
                   "owner co-sign every charge to its data (docs/witness.md)")
    return out


WITNESS_GUARANTEE = {
    "none": "budgets hold against the host alone; a host colluding with one party can restore an old "
            "sealed state and the other party cannot tell",
    "owners": "every charge to a dataset is co-signed by its owner's witness, which refuses a rolled-back "
              "enclave: budgets hold against the host colluding with one party",
}


PRIVACY_UNIT = ("one normalised identifier, not one person: a person known by two emails (or an "
                "email and a phone) is two units, and each gets the full per-unit bounds")


def lint_policy(raw: bytes) -> LintReport:
    """Parse ``raw``; on success, preview every analysis. Errors name the offending field."""
    try:
        policy = parse_policy(raw)
    except PolicyInvalid as exc:
        where, _, message = exc.message.partition(": ")
        return LintReport(False, errors=[{"field": where if message else "", "message": exc.message}])
    privacy = policy.privacy
    budgets: dict[str, Any] = {}
    for name, total in privacy.budget.items():
        budgets[name] = {privacy.unit: str(total)}
        if privacy.mode == "zcdp":
            budgets[name]["epsilon_at_delta"] = decimal_text(bun_steinke_epsilon(total, privacy.delta))
    summary = {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash.hex(),
        "mode": privacy.mode, "budget_unit": privacy.unit, "delta": str(privacy.delta),
        "contribution_bounds": {"max_cohorts_per_user": privacy.max_cohorts_per_user,
                                "max_rows_per_user": privacy.max_rows_per_user},
        "budgets": budgets,
    }
    analyses = [_analysis_entry(policy, a, m) for a in policy.analyses for m in (a.metrics or (None,))]
    for name in privacy.budget:
        budgets[name]["delta_total"] = str(_budget_delta_total(policy, name, analyses))
        if name in privacy.budget_shares:
            budgets[name]["shares"] = {party: str(v) for party, v in privacy.budget_shares[name].items()}
        if privacy.delta_total_max is not None:  # the enclave refuses a query past this cap
            budgets[name]["delta_total_max"] = str(privacy.delta_total_max)
    summary["privacy_unit"] = PRIVACY_UNIT
    summary["witness"] = {"mode": privacy.witness, "guarantee": WITNESS_GUARANTEE[privacy.witness]}
    summary["rules"] = rules_section(policy)  # free-form queries: cleanroom/policy_rules_lint.py
    summary["templates"] = templates_section(policy)
    return LintReport(True, warnings=_warnings(policy) + rule_warnings(policy)
                      + template_warnings(summary["templates"]), summary=summary,
                      analyses=analyses)


def _human(fraction_text: str) -> str:
    value = Fraction(fraction_text)
    return "0" if value == 0 else f"{float(value):.3g}"


def render_text(report: LintReport) -> str:
    """A human summary of ``report``."""
    if not report.valid:
        return "\n".join(f"error: {e['message']}" for e in report.errors)
    s = report.summary
    lines = [f"policy {s['collaboration_id']}: valid (sha256 {s['policy_hash'][:16]}...)",
             f"mode {s['mode']} (budgets in {s['budget_unit']}), delta {_human(s['delta'])}, "
             f"L0 {s['contribution_bounds']['max_cohorts_per_user']}, "
             f"Linf {s['contribution_bounds']['max_rows_per_user']}",
             f"privacy unit: {s['privacy_unit']}",
             f"witness {s['witness']['mode']}: {s['witness']['guarantee']}"]
    for name, budget in s["budgets"].items():
        extra = f" (epsilon <= {budget['epsilon_at_delta']} at delta)" if "epsilon_at_delta" in budget else ""
        cap = f" (capped at {_human(budget['delta_total_max'])})" if "delta_total_max" in budget else ""
        lines.append(f"  budget {name}: {budget[s['budget_unit']]}{extra}, "
                     f"total delta at most {_human(budget['delta_total'])}{cap}")
        if "shares" in budget:
            lines.append("    shares: " + ", ".join(f"{p} {_human(v)}" for p, v in budget["shares"].items()))
    for a in report.analyses:
        charge = a["charge_per_query"]
        metric = f" metric {a['metric']}" if a["metric"] else ""
        tau = f", threshold tau {a['threshold']}" if a["threshold"] is not None else ""
        lines.append("")
        lines.append(f"{a['id']} ({a['kind']}){metric}: {s['budget_unit']} {charge[s['budget_unit']]}"
                     f" per query on {', '.join(charge['datasets'])}, delta {_human(charge['delta'])}"
                     f" (total {_human(charge['delta_total'])}); "
                     f"{a['queries_until_exhausted']} queries until exhausted")
        lines.append(f"  cohort keys {a['cohort_keys']}{tau}, min cohort size {a['min_cohort_size']}, "
                     f"worst case {a['worst_case_cohorts']} cohorts")
        for st in a["statistics"]:
            sens = (f"sensitivity {st['sensitivity']}" if st["sensitivity"] is not None
                    else f"L2 sensitivity^2 {st['sensitivity_l2_squared']}")
            scale = st.get("noise_scale", st.get("noise_sigma2"))
            param = "scale" if "noise_scale" in st else "sigma^2"
            lines.append(f"  {st['statistic']:<12} {sens}, {st['noise']} {param} {scale}, "
                         f"std {st['noise_std']} {st['noise_std_unit']}")
    lines += render_rules(s.get("rules", {}), s["budget_unit"])
    lines += render_templates(s.get("templates", {}), s["budget_unit"])
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)
