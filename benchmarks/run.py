"""Side-by-side benchmark: enclave compute core vs DuckDB and Polars, real ingest, HTTP path.

    python -m benchmarks.run --rows N [--json] [--repeat 3] [--http-rows M] [--client-rows R]
        [--baselines duckdb,polars] [--duckdb-memory-limit 14GB] [--no-hint-compare] [--no-tune]

Each part runs in a process of its own, one after the other, on the same seeded data
(``benchmarks/datagen.py``, made block by block wherever it is needed):

1. ``benchmarks.upload_files``: both parties' clients encrypt their rows (the real
   ``UploadEncryptor``, the signed header carrying ``rows_hint`` as ``Client.upload`` sends it;
   ``--no-hint``: without it) into files holding the HTTP bodies, in a directory under /tmp;
2. ``benchmarks.enclave_process``, the enclave's share and nothing else: (c) ingest through the
   real enclave ``Session`` (``upload_begin`` -> ``upload_chunk`` per chunk -> ``upload_commit``,
   records read one at a time; also through ``handle_frame`` with real frames), in GB/s of
   plaintext; then (b) the core (``enclave/engine/``, driven by ``benchmarks/core.py``) on the
   tables that ingest produced: match + cohort codes + bounding with bounds that cannot bind +
   per-user metric + aggregate, and the same query through the plan engine with the policy's
   bounds. Its peak resident memory (VmHWM) over the raw column bytes is
   ``peak_mem_vs_raw_bytes``; ``memory.model_bytes`` is what ``benchmarks/memory_model.py``
   reserves for the same rows;
3. ``benchmarks.baseline_process``, once per baseline: DuckDB (2 threads) and Polars run
   ``BASELINE_SQL`` (or its Polars twin) on the same rows, loaded into their native tables
   first (loading is not timed);
4. in this process, when asked: (d) the full HTTP path (``benchmarks/http_path.py``,
   ``--http-rows``): a real host subprocess, attestation, both uploads from CSV (or Parquet)
   files, one query; (e) the ``client`` section (``benchmarks/client_path.py``,
   ``--client-rows``, default min(N, 10M)): the real client on CSV and Parquet files.

The aggregates of the core and of every baseline must be identical before anything is reported
or (d) runs (exit 1 if not). Times are medians of ``--repeat`` runs. The upload files are
deleted once the enclave process is done, the directory at the end.

Tuning (default; ``--no-tune`` measures the process as it starts): the run re-executes itself
with the environment of ``benchmarks/tuning.py`` (children inherit it): on AMD CPUs with
AVX-512 (Zen 4) NumPy's AVX2 sort instead of its AVX-512 one, and glibc keeping freed memory
(``MALLOC_MMAP_MAX_=0``, a high trim threshold) so that repeated queries reuse pages instead of
re-faulting them, as DuckDB's and Polars' own allocators do. The enclave process gets glibc as
the enclave manifest sets it instead (``MALLOC_ARENA_MAX=2``; ``--enclave-malloc tuned`` keeps
the tuned settings): kept freed memory would count in its peak, and the enclave does not keep it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.baselines import same_aggregates
from benchmarks.datagen import generate, raw_bytes
from benchmarks.measure import cpu_model, loadavg
from benchmarks.report import print_human
from benchmarks.tuning import AVX2_SORT_ENV, TUNED_ENV, retune

__all__ = ["benchmark", "main", "retune"]

CLIENT_ROWS_DEFAULT_MAX = 10_000_000  # the client section holds text columns: ~1 kB per row


def enclave_env(malloc: str) -> dict[str, str]:
    """The enclave process's environment: glibc as the manifest sets it (``manifest``: only
    ``MALLOC_ARENA_MAX=2``, so freed arrays go back, as in the enclave) or as tuned here."""
    env = dict(os.environ)
    if malloc == "manifest":
        for name in TUNED_ENV:
            env.pop(name, None)
        env["MALLOC_ARENA_MAX"] = "2"
    return env


def _child(module: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` to completion; its JSON, wall time, peak RSS and the load."""
    before, start = loadavg(), time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} exited with {proc.returncode}")
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    report["process"] = {"s": time.perf_counter() - start, "max_rss_bytes": usage.ru_maxrss * 1024,
                         "cpu_s": usage.ru_utime + usage.ru_stime, "loadavg_before": before,
                         "loadavg_after": loadavg()}
    return report


def _aggregates(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["users"], f["rows"], f["metric_sum"]


def _check_disk(work: Path, need: int) -> None:
    free = shutil.disk_usage(work).free
    if free < need + (1 << 30):
        raise RuntimeError(f"{work}: {free / 1e9:.1f} GB free, the upload files need {need / 1e9:.1f} GB")


def benchmark(rows: int, repeat: int = 3, *, baselines: tuple[str, ...] = ("duckdb", "polars"),
              memory: bool = True, rows_hint: bool = True, hint_compare: bool = True,
              frames: bool = True, plan: bool = True, http_rows: int = 0,
              http_format: str = "csv", http_profile: Path | None = None,
              http_keep: bool = False, client_rows: int | None = None,
              duckdb_memory_limit: str | None = None, work_dir: Path | None = None,
              enclave_malloc: str = "manifest") -> dict[str, Any]:
    """Run 1-4 on ``rows`` rows per party ((d) on ``http_rows``, skipped when 0).

    ``baselines``: empty checks the core against an independent NumPy reference instead.

    :raise AssertionError: the core's aggregates differ from a baseline's (then (d) never runs).
    """
    report: dict[str, Any] = {
        "rows_per_party": rows, "repeat": repeat, "raw_bytes": raw_bytes(rows),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "load_avg_at_start": os.getloadavg(),
                    "loadavg_at_start": loadavg()},
        "process_env": {k: os.environ[k] for k in (*TUNED_ENV, *AVX2_SORT_ENV)
                        if k in os.environ},
    }
    work = Path(tempfile.mkdtemp(prefix="cleanroom-bench-", dir=work_dir))
    try:
        _check_disk(work, int(raw_bytes(rows) * 1.05) * (2 if hint_compare else 1))
        writer = _child("benchmarks.upload_files", "--rows", str(rows), "--dir", str(work),
                        *(["--no-hint"] if not rows_hint else []),
                        *(["--other"] if hint_compare else []))
        report["processes"] = {"upload_files": writer.pop("process")}
        flags = [*([] if frames else ["--no-frames"]), *(["--compare"] if hint_compare else []),
                 *([] if memory else ["--no-memory"]), *([] if plan else ["--no-plan"])]
        env = enclave_env(enclave_malloc)
        report["enclave_process_env"] = {k: env[k] for k in (*TUNED_ENV, "MALLOC_ARENA_MAX",
                                                             *AVX2_SORT_ENV) if k in env}
        enclave = _child("benchmarks.enclave_process", "--dir", str(work), "--repeat",
                         str(repeat), *flags, env=env)
        report["processes"]["enclave"] = enclave.pop("process")
        report.update(enclave)
        for body in work.glob("*.body"):
            body.unlink()  # the ciphertext (as large as the raw columns) before any baseline
        core = _aggregates(work / "core.npz")
        checks = {}
        for name in baselines:
            extra = (["--memory-limit", duckdb_memory_limit, "--temp-dir", str(work)]
                     if name == "duckdb" and duckdb_memory_limit else [])
            res = _child("benchmarks.baseline_process", "--engine", name, "--rows", str(rows),
                         "--repeat", str(repeat), "--out", str(work / f"{name}.npz"), *extra)
            report["processes"][name] = res.pop("process")
            if "skipped" not in res:
                checks[name] = same_aggregates(core, _aggregates(work / f"{name}.npz"))
                report[f"core_vs_{name}"] = report["core_s"] / res["s"]
            report[name] = res
        if not checks:  # no baseline ran: an independent NumPy reference instead
            res = _child("benchmarks.baseline_process", "--engine", "numpy", "--rows", str(rows),
                         "--out", str(work / "numpy.npz"))
            report["processes"]["numpy_reference"] = res.pop("process")
            checks["numpy_reference"] = same_aggregates(core, _aggregates(work / "numpy.npz"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in ("duckdb", "polars"):
        report.setdefault(name, {"skipped": "not in --baselines"})
        report.setdefault(f"core_vs_{name}", None)
    report["identical_aggregates"] = checks
    if not all(checks.values()):
        raise AssertionError(f"aggregates differ from a baseline: {checks}")
    report["machine"]["loadavg_after_baselines"] = loadavg()
    client_rows = min(rows, CLIENT_ROWS_DEFAULT_MAX) if client_rows is None else client_rows
    report["client"] = None
    if client_rows > 0:
        from benchmarks.client_path import measure_client

        report["client"] = measure_client(generate(client_rows))
    report["http"] = None
    if http_rows > 0:
        from benchmarks.http_path import run_http  # starts a host subprocess: only when asked

        report["http"] = run_http(generate(http_rows), fmt=http_format, profile_dir=http_profile,
                                  keep=http_keep)
    report["machine"]["loadavg_at_end"] = loadavg()
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=(__doc__ or "").split("\n")[0],
        epilog="Exit status 1 if the core's aggregates differ from a baseline's.")
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N",
                        help="rows per party for (a)-(c) (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, metavar="K",
                        help="runs per timed figure; medians are reported (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-tune", action="store_true",
                        help="keep NumPy/glibc defaults (no re-exec with the tuned environment)")
    parser.add_argument("--baselines", default="duckdb,polars", metavar="LIST",
                        help="comma-separated, from duckdb, polars; empty: a NumPy reference "
                             "instead (default: %(default)s)")
    parser.add_argument("--duckdb-memory-limit", metavar="SIZE",
                        help="DuckDB's memory_limit (it spills to the work directory past it)")
    parser.add_argument("--no-hint", action="store_true",
                        help="the uploads carry no rows_hint (optional for a party): the whole "
                             "run then measures the enclave without it")
    parser.add_argument("--no-hint-compare", action="store_true",
                        help="skip the side-by-side run of the same uploads with and without "
                             "rows_hint (it writes and reads a second set of upload files)")
    parser.add_argument("--no-frames", action="store_true",
                        help="skip ingest through handle_frame")
    parser.add_argument("--no-plan", action="store_true",
                        help="skip the plan engine's run of the query")
    parser.add_argument("--http-rows", type=int, default=1_000_000, metavar="M",
                        help="rows per party for (d), the full HTTP path; 0 skips it "
                             "(default: %(default)s)")
    parser.add_argument("--client-rows", type=int, default=None, metavar="R",
                        help="rows per party for (e), the client on CSV and Parquet files; 0 "
                             f"skips it (default: --rows, at most {CLIENT_ROWS_DEFAULT_MAX:,})")
    parser.add_argument("--http-format", choices=("csv", "parquet"), default="csv",
                        help="party file format for (d) (default: %(default)s)")
    parser.add_argument("--http-profile", type=Path, metavar="DIR",
                        help="write py-spy flame graphs of the host worker and the enclave "
                             "during the uploads of (d) to DIR (needs py-spy on PATH or in "
                             "the venv)")
    parser.add_argument("--http-keep", action="store_true",
                        help="keep (d)'s work directory (files, host log, state) in /tmp")
    parser.add_argument("--enclave-malloc", choices=("manifest", "tuned"), default="manifest",
                        help="glibc settings of the enclave process: the manifest's (freed arrays "
                             "go back to the system, as in the enclave; default) or the tuned ones")
    parser.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="where the upload files go (default: the system's temp directory)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.http_rows < 0:
        parser.error("--rows must be positive and --http-rows non-negative")
    chosen = tuple(b for b in args.baselines.split(",") if b)
    if any(b not in ("duckdb", "polars") for b in chosen):
        parser.error("--baselines takes duckdb and/or polars")
    retune(argv)
    try:
        report = benchmark(args.rows, max(1, args.repeat), baselines=chosen,
                           rows_hint=not args.no_hint, hint_compare=not args.no_hint_compare,
                           frames=not args.no_frames, plan=not args.no_plan,
                           http_rows=args.http_rows, http_format=args.http_format,
                           http_profile=args.http_profile, http_keep=args.http_keep,
                           client_rows=args.client_rows,
                           duckdb_memory_limit=args.duckdb_memory_limit, work_dir=args.work_dir,
                           enclave_malloc=args.enclave_malloc)
    except AssertionError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        print_human(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
