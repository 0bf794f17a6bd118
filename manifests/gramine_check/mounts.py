"""fs.mounts: the sealed-state mount, scratch space in enclave memory, and the runtime.

The state mount's key name must be the one enclave/state/mount.py expects for the profile, so
it is imported from there rather than copied: a rename in the enclave fails this check.
"""

from __future__ import annotations

from typing import Any

from enclave.state import mount as state_mount
from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import STANDIN_PKGLIBDIR
from manifests.gramine_check.schema import env_value
from manifests.gramine_check.trusted_files import trusted_entries

STATE_KEY_NAME = {
    "sgx": state_mount.STATE_KEY_NAME_SGX,
    "direct": state_mount.STATE_KEY_NAME_DIRECT,
}
STATE_DIR_ENV = "CLEANROOM_STATE_DIR"
TMP_PATH = "/tmp"  # noqa: S108 - a path inside the enclave, which must be a tmpfs mount


def check_mounts(manifest: dict[str, Any], profile: str, report: Report) -> None:
    mounts = [m for m in manifest.get("fs", {}).get("mounts", []) if isinstance(m, dict)]
    by_path = {m.get("path"): m for m in mounts}
    _check_state_mount(manifest, mounts, profile, report)
    tmp = by_path.get(TMP_PATH)
    if tmp is None or tmp.get("type") != "tmpfs":
        report.add("tmp-not-tmpfs", f"{TMP_PATH} must be a tmpfs mount (enclave memory, not disk)")
    lib = by_path.get("/lib")
    if lib is None or not str(lib.get("uri", "")).startswith(f"file:{STANDIN_PKGLIBDIR}/runtime/"):
        report.add("runtimedir", "/lib must be mounted from gramine.runtimedir()")

    # The interpreter must be both measured and reachable inside the enclave.
    entrypoint = manifest.get("libos", {}).get("entrypoint")
    trusted = {e.uri for e in trusted_entries(manifest)}
    if f"file:{entrypoint}" not in trusted:
        report.add("entrypoint-untrusted", f"libos.entrypoint {entrypoint!r} is not trusted")
    if entrypoint not in by_path:
        report.add("entrypoint-untrusted", f"libos.entrypoint {entrypoint!r} is not mounted")


def _check_state_mount(
    manifest: dict[str, Any], mounts: list[dict[str, Any]], profile: str, report: Report
) -> None:
    """One encrypted directory, where the app looks for it, under the profile's key."""
    env = manifest.get("loader", {}).get("env", {})
    state_dir = env_value(env.get(STATE_DIR_ENV))
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
