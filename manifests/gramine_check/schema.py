"""The Gramine 1.9 manifest schema, as data, and the walk that checks a manifest against it.

Keys come from Gramine's manifest_check.py and the 1.9 documentation (docs/gramine.md). A spec
is: a Python type, a frozenset of allowed strings, a dict (TOML table; "*" matches any key), a
one-element list (array of that spec), or a tuple (any of these alternatives). Names Gramine
deprecated or removed are reported with what to use instead, so an old manifest gets a fix,
not just "unknown key".
"""

from __future__ import annotations

from typing import Any

from manifests.gramine_check.findings import Report

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

# Deprecated or removed names (docs/gramine.md) -> what to use instead.
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


def check_schema(manifest: dict[str, Any], report: Report) -> None:
    """Every key known to Gramine 1.9, every value of the right shape, nothing deprecated."""
    _walk(manifest, SCHEMA, "", report)
    _special_deprecations(manifest, report)
    for required in ("fs", "libos"):
        if required not in manifest:
            report.add("bad-value", f"[{required}] is required")


def env_value(value: Any) -> Any:
    """loader.env.X may be a string or { value = "..." }; both mean the same value."""
    return value.get("value") if isinstance(value, dict) else value


def _walk(value: Any, spec: Any, path: str, report: Report) -> None:
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
                _walk(sub, spec[key], sub_path, report)
            elif "*" in spec:
                _walk(sub, spec["*"], sub_path, report)
            elif sub_path in DEPRECATED:
                _walk(sub, None, sub_path, report)
            else:
                report.add("unknown-key", f"{sub_path} is not a Gramine 1.9 manifest key")
        return
    if not _matches(value, spec):
        report.add("bad-value", f"{path} = {value!r} is not valid here")


def _matches(value: Any, spec: Any) -> bool:
    if spec is object:
        return True
    if spec is _PASSTHROUGH:
        return bool(value == {"passthrough": True})
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
    """fs.mounts entries (and fs.root, which has no path): keys valid for their mount type."""
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
