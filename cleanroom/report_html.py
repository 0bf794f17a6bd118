"""The HTML report of a verified result: one self-contained file a marketer can open anywhere.

``render_report`` takes only what ``cleanroom.offline_check.check_saved_result`` returns (the
verified ``Result`` and the ``VerifiedEnclave`` whose key signed it), so there is no way to
render a result that was not verified. The page has inline CSS and inline SVG (``report_charts``)
and nothing else: no script, no font, no image, no link to fetch, and a Content-Security-Policy
that forbids fetching or running anything even if a viewer tried. Every string that comes from
the result, the policy or the attestation is escaped with ``html.escape``.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from cleanroom.formatting import fraction_decimal, iso_utc
from cleanroom.report_charts import cell_text, charts
from cleanroom.result_cells import result_view
from cleanroom.result_open import Result

if TYPE_CHECKING:
    from attestation.verifier.verify import VerifiedEnclave
    from cleanroom.audit import AuditHead

__all__ = ["SIMULATED_COLOUR", "VERIFIED_COLOUR", "render_report"]

SIMULATED_COLOUR = "#b71c1c"
VERIFIED_COLOUR = "#1b5e20"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"
_CSS = f"""
body {{ font-family: sans-serif; margin: 0; color: #1a1a1a; background: #ffffff; }}
main {{ padding: 16px 24px; max-width: 1100px; }}
#banner {{ padding: 14px 24px; color: #ffffff; font-size: 20px; font-weight: bold; }}
#banner.simulated {{ background: {SIMULATED_COLOUR}; }}
#banner.verified {{ background: {VERIFIED_COLOUR}; }}
#banner small {{ display: block; font-size: 14px; font-weight: normal; margin-top: 4px; }}
h1 {{ font-size: 22px; margin: 8px 0 4px; }}
h2 {{ font-size: 18px; margin: 24px 0 8px; border-bottom: 1px solid #dddddd; }}
table.facts td, table.facts th {{ text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }}
table.facts th {{ font-weight: normal; color: #555555; white-space: nowrap; }}
table.cells {{ border-collapse: collapse; font-size: 13px; }}
table.cells th, table.cells td {{ border: 1px solid #dddddd; padding: 3px 8px; }}
table.cells td.number {{ text-align: right; }}
.scroll {{ overflow-x: auto; }}
code {{ font-size: 12px; word-break: break-all; }}
.chart {{ display: block; margin: 8px 0 16px; font-size: 12px; }}
.chart-title {{ font-size: 14px; font-weight: bold; fill: #1a1a1a; }}
.chart .label, .chart .value {{ fill: #1a1a1a; }}
.chart .small {{ font-size: 10px; }}
.whisker {{ stroke: #202020; stroke-width: 1.5; }}
.axis {{ stroke: #999999; stroke-width: 1; }}
.histograms {{ display: flex; flex-wrap: wrap; gap: 8px 24px; }}
.note {{ color: #555555; font-size: 13px; }}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _facts(rows: list[tuple[str, str]]) -> str:
    """A two-column table; values are already-escaped HTML."""
    return ('<table class="facts">' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
            + "</table>")


def _banner(enclave: VerifiedEnclave) -> str:
    report = enclave.report
    if enclave.simulated:
        return ('<div id="banner" class="simulated" role="alert">SIMULATED enclave: no SGX hardware '
                'protected this computation<small>The signature and policy checks passed, but a '
                'simulated enclave proves nothing about who could see the data. For testing only.'
                '</small></div>')
    return (f'<div id="banner" class="verified">Verified: computed in an attested SGX enclave'
            f'<small>MRENCLAVE <code>{_e(report.mr_enclave)}</code></small></div>')


def _verification(result: Result, enclave: VerifiedEnclave, seen: AuditHead | None) -> str:
    report, body = enclave.report, result.body
    head = body.get("audit_head") or {}
    head_hash = head.get("hash", b"")
    rows = [
        ("attestation", "ACCEPTED" + (" (SIMULATED: no SGX hardware)" if enclave.simulated else
                                      " (SGX)")),
        ("enclave measurement (MRENCLAVE)", f"<code>{_e(report.mr_enclave)}</code>"),
        ("signer (MRSIGNER)", f"<code>{_e(report.mr_signer)}</code>"),
        ("TCB status", _e(f"{report.status} (advisories: {', '.join(report.advisory_ids) or 'none'})")),
        ("debug enclave", _e(report.debug)),
        ("policy hash", f"<code>{_e(enclave.policy_hash.hex())}</code> (equals your copy)"),
        ("result signature", "valid: signed by the attested enclave's key "
                             f"<code>{_e(enclave.sig_pub.hex())}</code>"),
        ("audit head in the result", _e(f"entry {head.get('seq', '?')}") + " <code>"
         + _e(head_hash.hex() if isinstance(head_hash, bytes) else head_hash) + "</code>"),
        ("newest head this client has seen", "none remembered" if seen is None
         else _e(f"entry {seen.seq}") + f" <code>{_e(seen.hash.hex())}</code>"),
        ("checks passed", _e(", ".join(c.name for c in report.checks if c.ok))),
    ]
    return "<h2>Verification</h2>" + _facts(rows)


def _decimals(mapping: Any, *, up: bool = False) -> str:
    if not isinstance(mapping, dict) or not mapping:
        return "-"
    return ", ".join(f"{_e(k)} {_e(fraction_decimal(v, up=up))}" for k, v in sorted(mapping.items()))


def _fixed_point(privacy: dict[str, Any]) -> str:
    scales = privacy.get("fixed_point_scale")
    if not isinstance(scales, dict) or not scales:
        return ""
    return _e(" (sums in units of " + ", ".join(f"10^-{s} for {m}" for m, s in sorted(scales.items()))
              + ")")


def _params(params: dict[str, Any]) -> str:
    def text(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        if isinstance(value, list):
            return ", ".join(str(v) for v in value) or "none"
        return str(value)

    return "; ".join(f"{k} {text(v)}" for k, v in sorted(params.items())) or "none"


def _privacy(result: Result) -> str:
    privacy = result.privacy if isinstance(result.privacy, dict) else {}
    mechanism = privacy.get("mechanism", "?")
    if "rho_charged" in privacy:
        charge = (f"ρ {_e(fraction_decimal(privacy['rho_charged'], up=True))} (at most ε "
                  f"{_e(fraction_decimal(privacy.get('epsilon_charged'), up=True))} for δ "
                  f"{_e(fraction_decimal(privacy.get('epsilon_at_delta'), up=True))})")
    else:
        charge = f"ε {_e(fraction_decimal(privacy.get('epsilon_charged', '?'), up=True))}"
    parameters = privacy.get("noise_scale", privacy.get("noise_sigma2"))
    parameter_name = "scale t" if "noise_scale" in privacy else "σ²"
    threshold = privacy.get("threshold")
    rows = [
        ("mechanism", _e(f"{mechanism} ({privacy.get('accounting', '?')} accounting)")),
        ("privacy charged by this query", charge),
        ("δ of this query", _e(fraction_decimal(privacy.get("delta_total", privacy.get(
            "delta_charged", "0")), places=15, up=True))),
        ("budget left per dataset", _decimals(privacy.get("budget_remaining"))),
        ("suppressed cohorts", _e(f"{privacy.get('suppressed_cohorts', '?')} of "
                                  f"{privacy.get('cohorts_total', '?')} (minimum cohort size "
                                  f"{privacy.get('min_cohort_size', privacy.get('min_persons', '?'))}"
                                  + (f", threshold τ {threshold}" if threshold is not None else "")
                                  + ")")),
        (f"noise {parameter_name} per statistic", _decimals(parameters) + _fixed_point(privacy)),
    ]
    return ("<h2>Privacy</h2>" + _facts(rows)
            + '<p class="note">Every count and sum carries calibrated random noise; ± is a 95% '
              "interval of that noise (sums in the metric's units). Cohorts below the minimum "
              "size are not released.</p>")


def _cells(result: Result, view: Any) -> str:
    if view.kind == "cohort_activation":
        return (f"<h2>Released identifiers</h2><p>{len(view.rows):,} of your own identifiers "
                "(SHA-256 digests) were released. They are <strong>not</strong> protected by "
                "differential privacy.</p>")
    head = "".join(f"<th>{_e(c.name)}</th>" for c in view.columns)
    lines = []
    for row, widths in zip(view.rows, view.intervals, strict=True):
        cells = [f'<td class="{"text" if c.kind == "label" else "number"}">{_e(cell_text(v, w))}</td>'
                 for c, v, w in zip(view.columns, row, widths, strict=False)]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    if not lines:
        lines.append(f'<tr><td colspan="{len(view.columns)}">no cohort passed the minimum cohort '
                     "size</td></tr>")
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in view.notes)
    return (f'<h2>All released cells</h2><div class="scroll"><table class="cells" id="cells"><thead>'
            f"<tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></div>{notes}")


def render_report(result: Result, enclave: VerifiedEnclave, *, seen: AuditHead | None = None,
                  generated_at: int | None = None) -> str:
    """The whole HTML page for a result that ``check_saved_result`` verified against ``enclave``.

    ``seen`` is the newest audit head this party remembers for the collaboration (shown for
    context); ``generated_at`` (Unix seconds) is printed in the footer.
    """
    body = result.body
    view = result_view(body)
    metric = (body.get("params") or {}).get("metric")
    metric_column = metric.partition(".")[2] if isinstance(metric, str) else None
    sections = []
    for heading, svgs in charts(view, metric_column):
        if svgs:
            wrap = "histograms" if heading.startswith("Frequency") else "chart-group"
            sections.append(f"<h2>{_e(heading)}</h2><div class=\"{wrap}\">{''.join(svgs)}</div>")
    params = body.get("params") or {}
    if body.get("kind") == "plan":  # the signed SQL and plan say what was asked
        asked = [("analysis", "SQL query (plan)"),
                 ("SQL", f"<pre>{_e(params.get('sql', ''))}</pre>"),
                 ("plan", f"<code>{_e(json.dumps(params.get('plan'), sort_keys=True))}</code>")]
    else:
        asked = [("analysis", _e(f"{body.get('analysis')} ({body.get('kind')})")),
                 ("parameters", _e(_params(params)))]
    about = [
        *asked,
        ("collaboration", _e(body.get("collaboration_id"))),
        ("requested by", _e(body.get("requested_by"))),
        ("recipients", _e(", ".join(str(r) for r in body.get("recipients", [])))),
        ("computed at", _e(iso_utc(body.get("created_at")))),
        ("query id", f"<code>{_e(result.query_id.hex())}</code>"),
    ]
    footer = ("Generated by <code>cleanroom report</code>"
              + (f" at {_e(iso_utc(generated_at))}" if generated_at is not None else "")
              + " after verifying the saved result offline. Re-check it yourself with "
                "<code>cleanroom check</code>.")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(body.get('analysis') or 'SQL query')}: clean-room result</title>",
        f"<style>{_CSS}</style></head><body>",
        _banner(enclave),
        "<main>",
        f"<h1>{_e(body.get('analysis') or 'SQL query')}</h1>",
        _facts(about),
        *sections,
        _privacy(result),
        _cells(result, view),
        _verification(result, enclave, seen),
        f'<p class="note" id="footer">{footer}</p>',
        "</main></body></html>",
        "",
    ])
