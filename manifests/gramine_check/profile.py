"""The production profile: what a manifest of this clean room must fix, pin or forbid.

Each rule closes a way for the host to steer the enclave: debug enclaves and insecure__ options,
a permissive file policy, argv or environment taken from the host, subprocesses, an unpinned
thread count that no longer fits sgx.max_threads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from manifests.gramine_check.findings import Report
from manifests.gramine_check.schema import env_value

# The only host environment variable the enclave may see: where to connect (docs/design.md).
ENV_ALLOW_LIST = frozenset({"CLEANROOM_ENCLAVE_CONNECT"})

# Thread budget (docs/gramine.md): app threads + BLAS threads + Gramine's helpers.
APP_THREADS = 2  # enclave/__main__.py's single frame loop + 1 spare
GRAMINE_HELPER_THREADS = 4  # IPC, async events, TLS handshake, one spare
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def check_profile(manifest: dict[str, Any], profile: str, report: Report) -> None:
    sgx = manifest.get("sgx", {})
    loader = manifest.get("loader", {})
    if sgx.get("debug", False) is not False:
        report.add("debug-enabled", "sgx.debug must be false (verifiers reject debug enclaves)")
    for key in _insecure_keys(manifest):
        report.add("insecure-key", f"{key} is an insecure/debug option")
    if sgx.get("file_check_policy", "strict") != "strict":
        report.add("file-check-policy", 'sgx.file_check_policy must be "strict"')
    if sgx.get("allowed_files"):
        report.add("allowed-files", "sgx.allowed_files lets unmeasured files in; use mounts")
    if loader.get("log_level", "error") in ("debug", "trace", "all"):
        report.add("log-level", f"loader.log_level = {loader['log_level']!r} leaks to the host")
    if profile == "sgx" and sgx.get("remote_attestation", "none") != "dcap":
        report.add("remote-attestation", 'sgx.remote_attestation must be "dcap" for SGX')
    if manifest.get("sys", {}).get("disallow_subprocesses") is not True:
        report.add("subprocesses-allowed", "sys.disallow_subprocesses must be true")
    _check_argv(loader, report)
    _check_env(loader, report)
    _check_sizes(sgx, loader.get("env", {}), report)


def _check_argv(loader: dict[str, Any], report: Report) -> None:
    """A fixed list ending in "-m enclave"; never from the host."""
    argv = loader.get("argv")
    if loader.get("insecure__use_cmdline_argv") or "argv_src_file" in loader:
        report.add("argv-from-host", "argv must be fixed in the manifest, not taken from the host")
    if not (isinstance(argv, list) and argv[1:] == ["-m", "enclave"]):
        report.add("argv", 'loader.argv must be [entrypoint, "-m", "enclave"]')


def _check_env(loader: dict[str, Any], report: Report) -> None:
    """Pinned values, and only the allow-listed variable from the host."""
    env = loader.get("env", {})
    for name, value in env.items():
        if value == {"passthrough": True} and name not in ENV_ALLOW_LIST:
            report.add("env-passthrough", f"loader.env.{name} is passed through from the host")
    if "env_src_file" in loader or loader.get("insecure__use_host_env"):
        report.add("env-passthrough", "the environment must not come from the host")
    if not str(env_value(env.get("LD_LIBRARY_PATH"))).startswith("/lib:"):
        report.add("runtimedir", "loader.env.LD_LIBRARY_PATH must start with /lib (Gramine's glibc)")


def _check_sizes(sgx: dict[str, Any], env: dict[str, Any], report: Report) -> None:
    size = _size_bytes(str(sgx.get("enclave_size", "256M")))
    if size is None or size & (size - 1):
        report.add("enclave-size", f"sgx.enclave_size = {sgx.get('enclave_size')!r} is not a power of two")
    blas = []
    for name in BLAS_THREAD_VARS:
        value = env_value(env.get(name))
        if value is None or not str(value).isdigit() or int(value) < 1:
            report.add("blas-unpinned", f"loader.env.{name} must pin a thread count")
        else:
            blas.append(int(value))
    # Only one BLAS/OpenMP runtime is active at a time, so the largest pin counts.
    need = APP_THREADS + max(blas, default=1) + GRAMINE_HELPER_THREADS
    threads = sgx.get("max_threads", 4)
    if not isinstance(threads, int) or threads < need:
        report.add(
            "max-threads",
            f"sgx.max_threads = {threads!r} < {APP_THREADS} app "
            f"+ {max(blas, default=1)} BLAS + {GRAMINE_HELPER_THREADS} Gramine = {need}",
        )


def _size_bytes(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    if not match:
        return None
    return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2]]


def _insecure_keys(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else key
            if key.startswith(("insecure__", "debug__")):
                yield sub
            yield from _insecure_keys(value, sub)
