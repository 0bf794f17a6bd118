"""fs.mounts: the sealed-state mount, scratch space in enclave memory, and the runtime.

Gramine applies the mounts in order, and a mount at a path hides every earlier mount at or
below it. So the rule is: a mount whose path is a prefix of another's comes first. A mount that
a later one hides is a finding (mount-shadowed), and so is a trusted file that is not reachable
inside the enclave through the mounts that remain: under a tmpfs (trusted-under-tmpfs, e.g. a
checkout under /tmp with the tmpfs mounted last) or under no mount of its host directory
(trusted-unreachable).

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
    visible = _check_order(mounts, report)
    _check_reachable(manifest, visible, report)
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


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _check_order(mounts: list[dict[str, Any]], report: Report) -> list[dict[str, Any]]:
    """Apply the mounts in order as Gramine does; report each one a later mount hides."""
    visible: list[dict[str, Any]] = []
    for mount in mounts:
        path = str(mount.get("path", ""))
        for hidden in [m for m in visible if _under(str(m.get("path", "")), path)]:
            report.add(
                "mount-shadowed",
                f"mount {hidden.get('path')!r} is hidden by the later mount {path!r}; "
                "a mount whose path is a prefix of another's must come first",
            )
            visible.remove(hidden)
        visible.append(mount)
    return visible


def _check_reachable(manifest: dict[str, Any], visible: list[dict[str, Any]], report: Report) -> None:
    """Each absolute trusted file must be opened through a file: mount of its own host path."""
    for entry in trusted_entries(manifest):
        raw = entry.uri.removeprefix("file:")
        if not raw.startswith("/") or entry.path.is_relative_to(STANDIN_PKGLIBDIR):
            continue  # relative: the root mount (the project root); Gramine's runtime: /lib
        inner = [m for m in visible if _under(raw, str(m.get("path", "")))]
        mount = max(inner, key=lambda m: len(str(m.get("path", ""))), default=None)
        if mount is not None and mount.get("type") == "tmpfs":
            report.add("trusted-under-tmpfs", f"{entry.uri} lies under the tmpfs at {mount.get('path')!r}")
            continue
        host = None
        if mount is not None and mount.get("type", "chroot") == "chroot":
            uri = str(mount.get("uri", "")).removeprefix("file:")
            host = uri.rstrip("/") + raw[len(str(mount["path"]).rstrip("/")):]
        if host != raw:
            report.add("trusted-unreachable", f"{entry.uri} is not mounted at its own path in the enclave")
