"""The enclave's memory model (benchmarks/memory_model.py) against the policies, the manifest and
the enclave's real peak memory.

Not timed: the measured figures are resident bytes (the kernel's VmHWM of a child process that
runs a real enclave session: ingest, then every analysis, template and SQL query of the example
policy, every row of both datasets matched), which do not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import memory_model as mm
from protocol.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("policies/advertiser-*.toml"))
SMALL, LARGE = 500_000, 1_500_000


def _probe(rows: int, policy: Path) -> dict:
    # The manifest's malloc setting; no benchmark tuning (glibc then returns freed arrays).
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    env = {k: v for k, v in env.items() if not k.startswith(("MALLOC_MMAP", "MALLOC_TRIM"))}
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory_probe", "--rows", str(rows),
                          "--policy", str(policy), "--overlap", "1", "--json"],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    report: dict = json.loads(out.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def probes() -> dict[int, dict]:
    policy = ROOT / "policies" / "advertiser-publisher-events.toml"
    return {rows: _probe(rows, policy) for rows in (SMALL, LARGE)}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policies_fit_the_manifest_enclave(path: Path) -> None:
    policy = parse_policy(path.read_bytes())
    need = mm.enclave_bytes(policy)
    size = mm.manifest_enclave_size()
    assert mm.enclave_size(need.total) <= size, (
        f"{path.name}: max_rows {[d.max_rows for d in policy.datasets]} need {need.parts}; at most "
        f"{mm.max_rows_for(policy, size):,} rows per dataset fit sgx.enclave_size = {size >> 20} MiB")


def test_model_arithmetic() -> None:
    policy = parse_policy(EXAMPLES[0].read_bytes())
    est = mm.enclave_bytes(policy, rows=1000)
    widths = [mm.row_bytes(d) for d in policy.datasets]
    assert est.parts["data"] == sum(1000 * (w + mm.KEY_CACHE) for w in widths)
    assert est.parts["staging"] == 1000 * max(widths)
    assert mm.enclave_size(est.total) >= mm.HEADROOM * est.total
    assert mm.enclave_size(est.total) & (mm.enclave_size(est.total) - 1) == 0
    fits = mm.max_rows_for(policy, 1 << 31)
    assert mm.HEADROOM * mm.enclave_bytes(policy, rows=fits).total <= 1 << 31
    assert mm.HEADROOM * mm.enclave_bytes(policy, rows=fits + 1).total > 1 << 31


def test_model_bounds_every_measured_peak(probes: dict[int, dict]) -> None:
    for rows, report in probes.items():
        # Natively there is no Gramine: the rest of the model must hold what was measured.
        allowed = report["model_bytes"] - mm.GRAMINE
        over = {step: peak for step, peak in report["peak_bytes"].items() if peak > allowed}
        assert not over, f"{rows:,} rows: peaks over the model's {allowed >> 20} MiB: {over}"


def test_model_bounds_the_growth_per_row(probes: dict[int, dict]) -> None:
    """The part of the model that scales with rows must cover how fast the peaks grow with rows
    (the fixed part alone would hide a per-row excess at these sizes)."""
    small, large = probes[SMALL], probes[LARGE]
    policy = parse_policy((ROOT / "policies" / small["policy"]).read_bytes())
    per_rows = (mm.enclave_bytes(policy, rows=LARGE).parts["data"]
                - mm.enclave_bytes(policy, rows=SMALL).parts["data"]
                + mm.QUERY_PER_ROW * len(policy.datasets) * (LARGE - SMALL))
    grown = {step: large["peak_bytes"][step] - small["peak_bytes"][step]
             for step in small["peak_bytes"]}
    over = {step: g for step, g in grown.items() if g > per_rows}
    assert not over, (f"peaks grew by more than the model's {per_rows >> 20} MiB from {SMALL:,} to "
                      f"{LARGE:,} rows per dataset: {over}")
