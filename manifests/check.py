"""Render and check the enclave's Gramine manifest without Gramine.

    python -m manifests.check [--profile sgx|direct] [--template PATH] [--define k=v]... [--json]
    python -m manifests.check --tcb-size

Gramine's own tools are not on PyPI, so this renders the template with a stand-in of the Jinja
environment `gramine-manifest` uses (same globals, StrictUndefined, trailing newline kept), parses
the result with tomllib and checks it against the Gramine 1.9 key schema (reference/gramine.md
§1.2/§1.3), the production profile, the trusted-file set and the clean room's own invariants.
Every finding is one line with a short stable id; the exit status is non-zero on any finding.

What this cannot check: paths that exist only with Gramine installed (the runtime dir with the
patched glibc, libsysdb.so) are checked for shape, not existence; MRENCLAVE needs libpal and
gramine-sgx-sign (`make measurement`); enclave_size/max_threads are only enforced under SGX.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from enclave.state import mount as state_mount

__all__ = ["Finding", "Report", "check", "main", "render", "tcb_files"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = PROJECT_ROOT / "manifests" / "cleanroom-enclave.manifest.template"
ENCLAVE_VENV = PROJECT_ROOT / ".venv-enclave"
VENV_DIRS = frozenset({".venv", ".venv-enclave"})

# Where Debian/Ubuntu packages put Gramine. Used only as a stand-in; never checked for existence.
STANDIN_PKGLIBDIR = Path("/usr/lib/x86_64-linux-gnu/gramine")

PROFILES = ("sgx", "direct")
STATE_KEY_NAME = {
    "sgx": state_mount.STATE_KEY_NAME_SGX,
    "direct": state_mount.STATE_KEY_NAME_DIRECT,
}
STATE_DIR_ENV = "CLEANROOM_STATE_DIR"
TMP_PATH = "/tmp"  # noqa: S108 - a path inside the enclave, which must be a tmpfs mount
# The only host environment variable the enclave may see (DESIGN.md §7: where to connect).
ENV_ALLOW_LIST = frozenset({"CLEANROOM_ENCLAVE_CONNECT"})

# Thread budget (reference/gramine.md §5): app threads + BLAS threads + Gramine's helpers.
APP_THREADS = 2  # enclave/__main__.py's single frame loop + 1 spare
GRAMINE_HELPER_THREADS = 4  # IPC, async events, TLS handshake, one spare
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Packages whose every .py must be trusted, and the party/host side that never may be.
TRUSTED_PACKAGES = ("enclave", "protocol", "attestation")
# attestation/ is split by who runs it: these modules load in the enclave; every other module
# there (verifier, simulation PKI, collateral) is party or host side and must never be trusted.
ENCLAVE_ATTESTATION_FILES = frozenset({
    "attestation/__init__.py", "enclave/requests/quote_provider.py", "attestation/verifier/quote_layout.py",
    "protocol/report_data.py",
})


def is_party_side(rel: str) -> bool:
    return rel.startswith("attestation/") and rel not in ENCLAVE_ATTESTATION_FILES
UNTRUSTED_DIRS = frozenset({"host", "cleanroom", "tests"})
KEY_FILE_SUFFIXES = frozenset({".pem", ".key", ".der", ".p12", ".pfx", ".crt", ".csr"})

# --------------------------------------------------------------------------------------------
# The Gramine 1.9 manifest schema, as data (keys from manifest_check.py, reference §1.2).
# A spec is: a Python type, a frozenset of allowed strings, a dict (TOML table; "*" matches any
# key), a one-element list (array of that spec), or a tuple (any of these alternatives).

_SIZE = str  # "2G", "256M", ...: checked separately where it matters
_URI = str
_MASK = str
_PASSTHROUGH = {"passthrough": True}  # marker: the literal value true
_ENV_VALUE = (str, {"value": str}, _PASSTHROUGH)
_CPU_FEATURE = frozenset({"unspecified", "disabled", "required"})
_MOUNT_KEYS = {
    "chroot": {"type", "path", "uri"},
    "encrypted": {"type", "path", "uri", "key_name", "enable_recovery"},
    "tmpfs": {"type", "path", "uri"},
    "untrusted_shm": {"type", "path", "uri"},
}

SCHEMA: dict[str, Any] = {
    "fs": {
        "mounts": "mount",  # checked by _check_mount_shape
        "root": "root",
        "start_dir": str,
        "insecure__keys": {"*": str},
    },
    "libos": {"entrypoint": str, "check_invalid_pointers": bool},
    "loader": {
        "entrypoint": {"uri": _URI, "sha256": str},
        "argv": [str],
        "argv_src_file": str,
        "env": {"*": _ENV_VALUE},
        "env_src_file": str,
        "gid": int,
        "uid": int,
        "insecure__use_cmdline_argv": bool,
        "insecure__use_host_env": bool,
        "insecure__disable_aslr": bool,
        "log_file": str,
        "log_level": frozenset({"none", "error", "warning", "debug", "trace", "all"}),
    },
    "sgx": {
        "allowed_files": [str],
        "cpu_features": {
            "avx": _CPU_FEATURE,
            "avx512": _CPU_FEATURE,
            "amx": _CPU_FEATURE,
            "mpx": frozenset({"disabled", "required"}),
            "pkru": frozenset({"disabled", "required"}),
        },
        "debug": bool,
        "edmm_enable": bool,
        "enable_stats": bool,
        "enclave_size": _SIZE,
        "file_check_policy": frozenset({"strict", "allow_all_but_log"}),
        "insecure__allow_memfaults_without_exinfo": bool,
        "insecure__rpc_thread_num": int,
        "isvprodid": int,
        "isvsvn": int,
        "max_threads": int,
        "preheat_enclave": bool,
        "profile": {
            "enable": frozenset({"none", "main", "all"}),
            "mode": frozenset({"aex", "ocall_inner", "ocall_outer"}),
            "with_stack": bool,
            "frequency": int,
        },
        "remote_attestation": frozenset({"none", "dcap"}),
        "seal_key": {"flags_mask": _MASK, "xfrm_mask": _MASK, "misc_mask": _MASK},
        "trusted_files": [(str, {"uri": _URI, "sha256": str})],
        "use_exinfo": bool,
        "vtune_profile": bool,
    },
    "sys": {
        "allowed_ioctls": [{"request_code": int, "struct": str}],
        "brk": {"max_size": _SIZE},
        "disallow_subprocesses": bool,
        "enable_extra_runtime_domain_names_conf": bool,
        "enable_sigterm_injection": bool,
        "experimental__enable_flock": bool,
        "insecure__allow_eventfd": bool,
        "ioctl_structs": {"*": object},
        "debug__mock_syscalls": [{"name": str, "return": int}],
        "stack": {"size": _SIZE},
        "fds": {"limit": int},
    },
}

# Deprecated or removed names (reference §1.3) -> what to use instead.
DEPRECATED: dict[str, str] = {
    "fs.mount": "the fs.mounts array",
    "sgx.protected_files": 'an encrypted mount (type = "encrypted", key_name)',
    "sgx.protected_mrenclave_files": 'an encrypted mount with key_name = "_sgx_mrenclave"',
    "sgx.protected_mrsigner_files": 'an encrypted mount with key_name = "_sgx_mrsigner"',
    "fs.insecure__protected_files_key": "fs.insecure__keys.<name> (debug only)",
    "sgx.ra_client_spid": 'nothing: EPID was removed in 1.9, use "dcap"',
    "sgx.ra_client_linkable": 'nothing: EPID was removed in 1.9, use "dcap"',
    "sgx.thread_num": "sgx.max_threads",
    "loader.pal_internal_mem_size": "nothing (removed)",
    "fs.experimental__enable_sysfs_topology": "nothing (sysfs topology is always on)",
    "sgx.require_avx": "sgx.cpu_features.avx",
    "sgx.require_avx512": "sgx.cpu_features.avx512",
    "sgx.require_amx": "sgx.cpu_features.amx",
    "sgx.require_mpx": "sgx.cpu_features.mpx",
    "sgx.require_pkru": "sgx.cpu_features.pkru",
    "sgx.require_exinfo": "sgx.use_exinfo",
    "sgx.nonpie_binary": "nothing (removed in 1.7)",
    "loader.preload": "nothing (libsysdb.so is loaded by default)",
}


@dataclass(frozen=True)
class Finding:
    """One problem: a short stable id (for tests and scripts) and a message for people."""

    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.id}: {self.message}"


@dataclass
class Report:
    """The outcome of one check run."""

    profile: str
    template: str
    variables: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def add(self, finding_id: str, message: str) -> None:
        self.findings.append(Finding(finding_id, message))

    @property
    def ok(self) -> bool:
        return not self.findings


# --------------------------------------------------------------------------------------------
# Rendering: a stand-in for graminelibos.gen_jinja_env (written from its documented behaviour).


class _Runtimedir:
    """gramine.runtimedir: callable with a libc name, and usable as a path without calling."""

    def __call__(self, libc: str = "glibc") -> Path:
        return STANDIN_PKGLIBDIR / "runtime" / libc

    def __str__(self) -> str:
        return str(self())

    def __truediv__(self, other: str) -> Path:
        return self() / other


def _get_sys_path(interpreter: str | os.PathLike[str]) -> Iterator[Path]:
    """Run the target interpreter, as gramine-manifest does, and yield its existing sys.path."""
    out = subprocess.run(
        [os.fspath(interpreter), "-c", "import sys; print('\\0'.join(p for p in sys.path if p))"],
        check=True,
        capture_output=True,
    ).stdout.rstrip(b"\n")
    for raw in out.split(b"\0"):
        path = Path(os.fsdecode(raw))
        if path.exists():
            yield path


def _ldd(*binaries: str | os.PathLike[str]) -> list[str]:
    """Absolute paths of the shared libraries the binaries link (vdso and friends skipped)."""
    try:
        out = subprocess.run(
            ["ldd", *(os.fspath(b) for b in binaries)], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    libs = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            libs.add(parts[2])
        elif len(parts) >= 2 and parts[0].startswith("/"):
            libs.add(parts[0])
    return sorted(libs)


def _jinja_env() -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders TOML, not HTML
    )
    paths = sysconfig.get_paths()
    env.globals.update(
        gramine={
            "libos": STANDIN_PKGLIBDIR / "libsysdb.so",
            "pkglibdir": STANDIN_PKGLIBDIR,
            "runtimedir": _Runtimedir(),
        },
        python={
            "stdlib": Path(paths["stdlib"]),
            "platstdlib": Path(paths["platstdlib"]),
            "purelib": Path(paths["purelib"]),
            "distlib": Path("/usr/lib/python3/dist-packages"),
            "get_config_var": sysconfig.get_config_var,
            "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
            "get_path": sysconfig.get_path,
            "get_paths": sysconfig.get_paths,
            "implementation": sys.implementation,
            "get_sys_path": _get_sys_path,
        },
        env=os.environ,
        ldd=_ldd,
    )
    return env


@functools.cache
def _arch_libdir() -> str:
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if not multiarch:
        multiarch = f"{platform.machine()}-linux-gnu"
    return f"/lib/{multiarch}"


def default_variables(profile: str) -> dict[str, str]:
    """The -D values `make gramine-manifest` passes, computed for this machine."""
    enclave_python = ENCLAVE_VENV / "bin" / "python"
    # Without the enclave venv, render with the running interpreter (a dev venv): the manifest's
    # shape is the same; only the sys.path entries differ (the summary says so).
    entrypoint = enclave_python if enclave_python.exists() else Path(sys.executable)
    return {
        "entrypoint": str(entrypoint),
        "arch_libdir": _arch_libdir(),
        "ra_type": "dcap",
        "debug": "false",
        "log_level": "error",
        "state_dir": f"state/gramine-{profile}",
        "mode": profile,
    }


def render(template: Path, variables: dict[str, str]) -> str:
    """Render the template like `gramine-manifest -Dk=v ...` would (raises jinja2 errors)."""
    return _jinja_env().from_string(template.read_text()).render(**variables)


# --------------------------------------------------------------------------------------------
# Schema


def _schema_walk(value: Any, spec: Any, path: str, report: Report) -> None:
    if path in DEPRECATED:
        report.add("deprecated-key", f"{path} is deprecated or removed; use {DEPRECATED[path]}")
        return
    if spec == "mount" or spec == "root":
        _check_mount_shape(value, path, report, needs_path=spec == "mount")
        return
    if isinstance(spec, dict) and spec is not _PASSTHROUGH:
        if not isinstance(value, dict):
            report.add("bad-value", f"{path} must be a table")
            return
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            if key in spec:
                _schema_walk(sub, spec[key], sub_path, report)
            elif "*" in spec:
                _schema_walk(sub, spec["*"], sub_path, report)
            elif sub_path in DEPRECATED:
                _schema_walk(sub, None, sub_path, report)
            else:
                report.add("unknown-key", f"{sub_path} is not a Gramine 1.9 manifest key")
        return
    if not _matches(value, spec):
        report.add("bad-value", f"{path} = {value!r} is not valid here")


def _matches(value: Any, spec: Any) -> bool:
    if spec is object:
        return True
    if spec is _PASSTHROUGH:
        return value == {"passthrough": True}
    if isinstance(spec, tuple):
        return any(_matches(value, alt) for alt in spec)
    if isinstance(spec, frozenset):
        return isinstance(value, str) and value in spec
    if isinstance(spec, list):
        return isinstance(value, list) and all(_matches(v, spec[0]) for v in value)
    if isinstance(spec, dict):
        return (
            isinstance(value, dict)
            and set(value) <= set(spec)
            and all(_matches(v, spec[k]) for k, v in value.items())
        )
    if spec is int:  # TOML booleans are not integers
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, spec)


def _check_mount_shape(value: Any, path: str, report: Report, *, needs_path: bool) -> None:
    entries = value if isinstance(value, list) else [value]
    if needs_path and not isinstance(value, list):
        report.add("bad-value", f"{path} must be an array of inline tables")
        return
    for mount in entries:
        if not isinstance(mount, dict):
            report.add("bad-value", f"{path}: {mount!r} is not a table")
            continue
        kind = mount.get("type", "chroot")
        allowed = _MOUNT_KEYS.get(kind)
        if allowed is None:
            report.add("bad-value", f"{path}: unknown mount type {kind!r}")
            continue
        if not needs_path:
            allowed = allowed - {"path"}
        for key in sorted(set(mount) - allowed):
            report.add("unknown-key", f"{path}: key {key!r} is not valid in a {kind} mount")
        if needs_path and not str(mount.get("path", "")).startswith("/"):
            report.add("mount-path", f"{path}: mount path {mount.get('path')!r} is not absolute")
        if kind != "tmpfs" and not str(mount.get("uri", "")).startswith("file:"):
            report.add("bad-value", f"{path}: mount uri {mount.get('uri')!r} is not file:")


def _special_deprecations(manifest: dict[str, Any], report: Report) -> None:
    """Old value forms of keys that still exist."""
    sgx = manifest.get("sgx", {})
    loader = manifest.get("loader", {})
    if isinstance(loader.get("entrypoint"), str):
        report.add("deprecated-key", "loader.entrypoint as a string is an error in 1.9; omit it")
    ra = sgx.get("remote_attestation")
    if isinstance(ra, bool) or ra == "epid":
        report.add("deprecated-key", f'sgx.remote_attestation = {ra!r}: use "none" or "dcap"')
    for name in ("trusted_files", "allowed_files"):
        if isinstance(sgx.get(name), dict):
            report.add("deprecated-key", f"sgx.{name} as a table: use a plain array")


# --------------------------------------------------------------------------------------------
# Trusted files


@dataclass(frozen=True)
class _Trusted:
    uri: str
    path: Path  # as on the host, relative URIs resolved against the project root
    is_dir_uri: bool


def _trusted_entries(manifest: dict[str, Any]) -> list[_Trusted]:
    entries = []
    for item in manifest.get("sgx", {}).get("trusted_files", []):
        uri = item["uri"] if isinstance(item, dict) else item
        if not isinstance(uri, str):
            continue
        raw = uri.removeprefix("file:")
        path = Path(raw) if raw.startswith("/") else PROJECT_ROOT / raw
        entries.append(_Trusted(uri, path, uri.endswith("/")))
    return entries


def _project_relative(path: Path) -> str | None:
    """'enclave/x.py' for a file of this repository (venvs excluded), else None."""
    try:
        rel = path.resolve(strict=False).relative_to(PROJECT_ROOT) if path.is_absolute() else path
    except ValueError:
        return None
    if rel.parts and rel.parts[0] in VENV_DIRS:
        return None
    return rel.as_posix()


def _source_of(rel: str) -> str:
    """attestation/__pycache__/verify.cpython-311.pyc -> attestation/verifier/verify.py."""
    p = Path(rel)
    if p.suffix == ".pyc" and p.parent.name == "__pycache__":
        return (p.parent.parent / (p.name.split(".")[0] + ".py")).as_posix()
    return rel


def _forbidden_reason(rel: str) -> str | None:
    src = _source_of(rel)
    parts = Path(src).parts
    if rel in ("", ".") or not parts:
        return "the whole repository"
    if parts[0] in UNTRUSTED_DIRS:
        return f"{parts[0]}/ is untrusted host/party/test code"
    if is_party_side(src):
        return "party-side attestation code"
    if Path(rel).suffix in KEY_FILE_SUFFIXES or any("pki" in q.lower() for q in parts):
        return "a key or PKI file"
    return None


@functools.cache
def _walk_files(directory: Path) -> tuple[Path, ...]:
    """Files gramine-manifest would measure under a trusted directory (no symlinked dirs).

    Cached: a check walks the same system and stdlib trees for every profile and test.
    """
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not Path(root, d).is_symlink())
        found.extend(Path(root, name) for name in sorted(files))
    return tuple(found)


def _check_trusted(manifest: dict[str, Any], report: Report) -> list[str]:
    """Checks on sgx.trusted_files; returns the project files it trusts (relative paths)."""
    project_files: list[str] = []
    counts = dict.fromkeys(("project", "python", "system"), 0)
    sizes = dict.fromkeys(("project", "python", "system"), 0)
    seen: set[Path] = set()
    entries = _trusted_entries(manifest)
    for entry in entries:
        if not entry.uri.startswith("file:"):
            report.add("trusted-uri", f"{entry.uri}: trusted files must be file: URIs")
            continue
        if entry.path.is_relative_to(STANDIN_PKGLIBDIR):
            continue  # Gramine's runtime: exists only with Gramine installed (shape only)
        rel = _project_relative(entry.path)
        reason = _forbidden_reason(rel) if rel is not None and not entry.is_dir_uri else None
        if reason:
            report.add("trusted-forbidden", f"{entry.uri} trusts {rel} ({reason})")
            continue
        if not entry.path.exists():
            report.add("trusted-file-missing", f"{entry.uri} does not exist")
            continue
        if entry.path.is_dir() != entry.is_dir_uri:
            report.add("trusted-uri", f"{entry.uri}: directories end in '/', files do not")
            continue
        if entry.is_dir_uri and PROJECT_ROOT.is_relative_to(entry.path.resolve()):
            report.add("trusted-forbidden", f"{entry.uri} trusts the whole repository")
            continue
        files = list(_walk_files(entry.path)) if entry.is_dir_uri else [entry.path]
        if rel is not None and entry.is_dir_uri:
            report.add("trusted-project-dir", f"{entry.uri}: list project files one by one")
        outside_kind = "system" if _is_system(entry.path) else "python"
        for f in files:
            info = _file_info(f)
            if info is None:
                continue  # gramine-manifest skips what it cannot read, e.g. dangling links
            real, size = info
            if real in seen:
                continue  # e.g. /lib and /usr/lib are one directory on merged-/usr systems
            seen.add(real)
            item = _project_relative(f) if rel is not None else None
            if item is not None:
                reason = _forbidden_reason(item)
                if reason:
                    report.add("trusted-forbidden", f"{entry.uri} trusts {item} ({reason})")
                project_files.append(item)
            kind = "project" if item is not None else outside_kind
            counts[kind] += 1
            sizes[kind] += size
    report.stats.update({f"{k}_files": v for k, v in counts.items()})
    report.stats.update({f"{k}_bytes": v for k, v in sizes.items()})
    report.stats["trusted_entries"] = len(entries)
    return project_files


@functools.cache
def _file_info(path: Path) -> tuple[Path, int] | None:
    """(real path, size) of a regular file, else None. Cached like _walk_files."""
    if not path.is_file():
        return None
    return path.resolve(), path.stat().st_size


def _is_system(path: Path) -> bool:
    """Under the arch libdirs (trusted whole, as in Gramine's Python example)."""
    arch = _arch_libdir()
    return path.is_relative_to(arch) or path.is_relative_to(f"/usr{arch}")


def _check_completeness(project_files: list[str], report: Report) -> None:
    trusted = set(project_files)
    for package in TRUSTED_PACKAGES:
        for source in sorted((PROJECT_ROOT / package).rglob("*.py")):
            rel = source.relative_to(PROJECT_ROOT).as_posix()
            if "__pycache__" in rel or is_party_side(rel):
                continue
            if rel not in trusted:
                report.add("module-not-trusted", f"{rel} is enclave code but not trusted")


def _check_pycs(project_files: list[str], report: Report) -> None:
    """Trusted byte-code must be checked-hash pycs of the current source.

    A timestamp pyc is trusted as long as the host-supplied mtime of its source matches, so a
    stale one could run instead of the measured source. A checked-hash pyc is verified against
    the (also trusted) source on every import.
    """
    for rel in project_files:
        if not rel.endswith(".pyc"):
            continue
        pyc, src = PROJECT_ROOT / rel, PROJECT_ROOT / _source_of(rel)
        if not pyc.exists() or not src.exists():
            continue  # reported as trusted-file-missing
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if flags != 0b11:
            report.add("pyc-stale", f"{rel} is not a checked-hash pyc; run `make enclave-pyc`")
        elif header[8:16] != importlib.util.source_hash(src.read_bytes()):
            report.add("pyc-stale", f"{rel} does not match {_source_of(rel)}; run `make enclave-pyc`")


# --------------------------------------------------------------------------------------------
# Profile and invariants


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


def _check_profile(manifest: dict[str, Any], profile: str, report: Report) -> None:
    sgx = manifest.get("sgx", {})
    loader = manifest.get("loader", {})
    env = loader.get("env", {})
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

    # argv: a fixed list ending in "-m enclave"; never from the host.
    argv = loader.get("argv")
    if loader.get("insecure__use_cmdline_argv") or "argv_src_file" in loader:
        report.add("argv-from-host", "argv must be fixed in the manifest, not taken from the host")
    if not (isinstance(argv, list) and argv[1:] == ["-m", "enclave"]):
        report.add("argv", 'loader.argv must be [entrypoint, "-m", "enclave"]')

    # Environment: pinned values, and only the allow-listed variable from the host.
    for name, value in env.items():
        if value == {"passthrough": True} and name not in ENV_ALLOW_LIST:
            report.add("env-passthrough", f"loader.env.{name} is passed through from the host")
    if "env_src_file" in loader or loader.get("insecure__use_host_env"):
        report.add("env-passthrough", "the environment must not come from the host")
    if not str(_env_value(env.get("LD_LIBRARY_PATH"))).startswith("/lib:"):
        report.add("runtimedir", "loader.env.LD_LIBRARY_PATH must start with /lib (Gramine's glibc)")

    # Sizes and threads.
    size = _size_bytes(str(sgx.get("enclave_size", "256M")))
    if size is None or size & (size - 1):
        report.add("enclave-size", f"sgx.enclave_size = {sgx.get('enclave_size')!r} is not a power of two")
    blas = []
    for name in BLAS_THREAD_VARS:
        value = _env_value(env.get(name))
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


def _env_value(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else value


def _check_mounts(manifest: dict[str, Any], profile: str, report: Report) -> None:
    mounts = [m for m in manifest.get("fs", {}).get("mounts", []) if isinstance(m, dict)]
    by_path = {m.get("path"): m for m in mounts}
    env = manifest.get("loader", {}).get("env", {})
    state_dir = _env_value(env.get(STATE_DIR_ENV))
    encrypted = [m for m in mounts if m.get("type") == "encrypted"]
    if not encrypted:
        report.add("state-mount-missing", "no encrypted mount for the sealed state")
    for mount in encrypted:
        if mount.get("path") != state_dir:
            report.add(
                "state-mount-path",
                f"encrypted mount at {mount.get('path')!r} but loader.env.{STATE_DIR_ENV} = {state_dir!r}",
            )
        expected = STATE_KEY_NAME[profile]
        if mount.get("key_name", "default") != expected:
            report.add(
                "state-mount-key",
                f"state mount key_name = {mount.get('key_name')!r}, "
                f"enclave/state/mount.py expects {expected!r} for {profile}",
            )
        if not str(mount.get("uri", "")).endswith("/"):
            report.add("state-mount-path", "the state mount uri must be a directory (end in '/')")
    tmp = by_path.get(TMP_PATH)
    if tmp is None or tmp.get("type") != "tmpfs":
        report.add("tmp-not-tmpfs", f"{TMP_PATH} must be a tmpfs mount (enclave memory, not disk)")
    lib = by_path.get("/lib")
    if lib is None or not str(lib.get("uri", "")).startswith(f"file:{STANDIN_PKGLIBDIR}/runtime/"):
        report.add("runtimedir", "/lib must be mounted from gramine.runtimedir()")

    entrypoint = manifest.get("libos", {}).get("entrypoint")
    trusted = {e.uri for e in _trusted_entries(manifest)}
    if f"file:{entrypoint}" not in trusted:
        report.add("entrypoint-untrusted", f"libos.entrypoint {entrypoint!r} is not trusted")
    if entrypoint not in by_path:
        report.add("entrypoint-untrusted", f"libos.entrypoint {entrypoint!r} is not mounted")


# --------------------------------------------------------------------------------------------
# Driver


def _load(template: Path, variables: dict[str, str], report: Report) -> dict[str, Any] | None:
    try:
        text = render(template, variables)
    except (jinja2.TemplateError, OSError, subprocess.CalledProcessError) as exc:
        report.add("render-error", f"{type(exc).__name__}: {exc}")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        report.add("toml-error", str(exc))
        return None


def check(
    profile: str = "sgx",
    template: Path = DEFAULT_TEMPLATE,
    defines: dict[str, str] | None = None,
) -> Report:
    """Render ``template`` for ``profile`` ("sgx" or "direct") and check it."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}")
    variables = default_variables(profile) | (defines or {})
    report = Report(profile=profile, template=str(template), variables=variables)
    if not Path(variables["entrypoint"]).is_relative_to(ENCLAVE_VENV):
        report.notes.append(
            f"enclave venv {ENCLAVE_VENV} absent or not used: sys.path taken "
            f"from {variables['entrypoint']} (run `make enclave-venv`)"
        )
    report.notes.append(f"Gramine runtime paths ({STANDIN_PKGLIBDIR}) are checked for shape only")
    manifest = _load(template, variables, report)
    if manifest is None:
        return report
    _schema_walk(manifest, SCHEMA, "", report)
    _special_deprecations(manifest, report)
    for required in ("fs", "libos"):
        if required not in manifest:
            report.add("bad-value", f"[{required}] is required")
    _check_profile(manifest, profile, report)
    _check_mounts(manifest, profile, report)
    project_files = _check_trusted(manifest, report)
    _check_completeness(project_files, report)
    _check_pycs(project_files, report)
    return report


def tcb_files(template: Path = DEFAULT_TEMPLATE, defines: dict[str, str] | None = None) -> list[str]:
    """The repository's source files the SGX manifest trusts (relative paths, sorted)."""
    report = Report("sgx", str(template), default_variables("sgx") | (defines or {}))
    manifest = _load(template, report.variables, report)
    if manifest is None:
        raise SystemExit("\n".join(map(str, report.findings)))
    return sorted({f for f in _check_trusted(manifest, report) if f.endswith(".py")})


def _print_report(report: Report) -> None:
    s = report.stats
    mib = 1 << 20
    print(
        f"manifests.check: {report.template} rendered for profile {report.profile!r} "
        f"(mode={report.variables.get('mode')}, ra_type={report.variables.get('ra_type')}, "
        f"debug={report.variables.get('debug')})"
    )
    print(f"  entrypoint: {report.variables.get('entrypoint')}")
    if s:
        print(f"  trusted entries: {s.get('trusted_entries', 0)}; existing files they cover:")
        print(f"    project:  {s['project_files']:6d} files {s['project_bytes'] / mib:8.1f} MiB")
        print(
            f"    python:   {s['python_files']:6d} files {s['python_bytes'] / mib:8.1f} MiB"
            "  (interpreter, venv, stdlib)"
        )
        print(
            f"    system:   {s['system_files']:6d} files {s['system_bytes'] / mib:8.1f} MiB"
            "  (arch libdirs; hashed by gramine-manifest too)"
        )
    for note in report.notes:
        print(f"  note: {note}")
    for finding in report.findings:
        print(f"  FINDING {finding}")
    print(f"  {'OK' if report.ok else f'{len(report.findings)} finding(s)'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manifests.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=PROFILES, default="sgx")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument(
        "--define",
        "-D",
        action="append",
        default=[],
        metavar="K=V",
        help="template variable, as gramine-manifest -D (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--tcb-size",
        action="store_true",
        help="print the line count of the repository files the manifest trusts",
    )
    args = parser.parse_args(argv)
    defines = {}
    for item in args.define:
        key, sep, value = item.partition("=")
        defines[key] = value if sep else "true"  # a bare -Dflag is true, as in gramine-manifest

    if args.tcb_size:
        total = 0
        for rel in tcb_files(args.template, defines):
            lines = len((PROJECT_ROOT / rel).read_bytes().splitlines())
            total += lines
            print(f"{lines:7d} {rel}")
        print(f"{total:7d} total")
        return 0

    report = check(args.profile, args.template, defines)
    if args.json:
        print(
            json.dumps(
                {
                    "profile": report.profile,
                    "template": report.template,
                    "variables": report.variables,
                    "ok": report.ok,
                    "findings": [{"id": f.id, "message": f.message} for f in report.findings],
                    "notes": report.notes,
                    "stats": report.stats,
                },
                indent=2,
            )
        )
    else:
        _print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
