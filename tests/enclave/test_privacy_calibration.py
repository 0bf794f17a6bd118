"""The calibration benchmark runs (small here; ``python -m benchmarks.dp_calibration`` does 200k)."""

from __future__ import annotations

from benchmarks.dp_calibration import run


def test_calibration_report_shape_and_verdict() -> None:
    report = run(3_000, jobs=1)
    assert {(r["sampler"], r["scale"]) for r in report["samplers"]} >= {
        ("discrete_laplace", "1"), ("discrete_gaussian", "100")}
    for r in report["samplers"]:
        assert 0 <= r["p_value"] <= 1 and r["variance_ratio"] > 0
    assert all(r["release_rate"] <= r["delta_per_cohort"] + 0.01 for r in report["private_cohort_release"])
    assert report["policy_threshold"]["threshold"] == 430
    assert report["ok"] is True
