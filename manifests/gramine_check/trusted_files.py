"""sgx.trusted_files: what the manifest measures, and whether it is exactly the TCB.

The rules are by folder. Every .py under enclave/ and protocol/ must be trusted together with
its byte-code; nothing else of the repository may be (attestation/, host/, cleanroom/, tests/,
benchmarks/, a stray file in the root), and no key or PKI file anywhere. Project directories
must not be trusted whole: gramine-manifest would hash whatever lies in them at signing time
(stale byte-code, editor files), and MRENCLAVE would depend on it. The same holds outside the
repository: no system, stdlib or venv directory is trusted whole (only Gramine's own runtime),
and no file is listed twice, also not through a symlinked parent (/lib -> /usr/lib on
merged-/usr systems).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import (
    PROJECT_ROOT,
    STANDIN_PKGLIBDIR,
    TCB_DIRS,
    VENV_DIRS,
    tcb_folder,
    tcb_sources,
)
from manifests.gramine_check.render import arch_libdir

KEY_FILE_SUFFIXES = frozenset({".pem", ".key", ".der", ".p12", ".pfx", ".crt", ".csr"})
_TCB_NAMES = " and ".join(f"{d}/" for d in TCB_DIRS)


@dataclass(frozen=True)
class Trusted:
    uri: str
    path: Path  # as on the host, relative URIs resolved against the project root
    is_dir_uri: bool


def trusted_entries(manifest: dict[str, Any]) -> list[Trusted]:
    entries = []
    for item in manifest.get("sgx", {}).get("trusted_files", []):
        uri = item["uri"] if isinstance(item, dict) else item
        if not isinstance(uri, str):
            continue
        raw = uri.removeprefix("file:")
        path = Path(raw) if raw.startswith("/") else PROJECT_ROOT / raw
        entries.append(Trusted(uri, path, uri.endswith("/")))
    return entries


def check_trusted(manifest: dict[str, Any], report: Report) -> list[str]:
    """Checks each sgx.trusted_files entry; returns the project files trusted (relative paths)."""
    project_files: list[str] = []
    counts = dict.fromkeys(("project", "python", "system"), 0)
    sizes = dict.fromkeys(("project", "python", "system"), 0)
    seen: set[Path] = set()
    listed: dict[Path, str] = {}
    entries = trusted_entries(manifest)
    for entry in entries:
        if not entry.uri.startswith("file:"):
            report.add("trusted-uri", f"{entry.uri}: trusted files must be file: URIs")
            continue
        if entry.path.is_relative_to(STANDIN_PKGLIBDIR):
            continue  # Gramine's runtime: exists only with Gramine installed (shape only)
        rel = _project_relative(entry.path)
        # A single file is judged by its name first, so a key is refused even if it is absent.
        refusal = _refusal(rel) if rel is not None and not entry.is_dir_uri else None
        if refusal:
            report.add(refusal[0], f"{entry.uri} trusts {rel} ({refusal[1]})")
            if not entry.path.is_file():
                continue
        elif not entry.path.exists():
            report.add("trusted-file-missing", f"{entry.uri} does not exist")
            continue
        if entry.path.is_dir() != entry.is_dir_uri:
            report.add("trusted-uri", f"{entry.uri}: directories end in '/', files do not")
            continue
        if entry.is_dir_uri and PROJECT_ROOT.is_relative_to(entry.path.resolve()):
            report.add("trusted-forbidden", f"{entry.uri} trusts the whole repository")
            continue
        if rel is not None and entry.is_dir_uri:
            report.add("trusted-project-dir", f"{entry.uri}: trust project files one by one")
        elif entry.is_dir_uri:
            report.add("trusted-system-dir", f"{entry.uri}: trust the files loaded, not a directory")
        files = _walk_files(entry.path) if entry.is_dir_uri else (entry.path,)
        outside_kind = "system" if _is_system(entry.path) else "python"
        for f in files:
            info = _file_info(f)
            if info is None:
                continue  # gramine-manifest skips what it cannot read, e.g. dangling links
            real, size = info
            key = listing_key(f)
            if key in listed:
                report.add("trusted-duplicate", f"{entry.uri}: {f} is already trusted as {listed[key]}")
                continue
            listed[key] = entry.uri
            if real in seen:
                continue  # e.g. /lib and /usr/lib are one directory on merged-/usr systems
            seen.add(real)
            item = _project_relative(f) if rel is not None else None
            if item is not None:
                if entry.is_dir_uri and (refusal := _refusal(item)):
                    report.add(refusal[0], f"{entry.uri} trusts {item} ({refusal[1]})")
                project_files.append(item)  # refused or not, gramine-manifest would measure it
            kind = "project" if item is not None else outside_kind
            counts[kind] += 1
            sizes[kind] += size
    report.stats.update({f"{k}_files": v for k, v in counts.items()})
    report.stats.update({f"{k}_bytes": v for k, v in sizes.items()})
    report.stats["trusted_entries"] = len(entries)
    return project_files


def listing_key(path: Path) -> Path:
    """A file's path with its directory resolved: one key for /lib/x/libz.so.1 and /usr/lib/x/...

    The file name itself is kept: a symlinked file (libz.so.1 -> libz.so.1.2.13) is a second
    name the loader may open, which Gramine checks by name.
    """
    return Path(os.path.realpath(path.parent)) / path.name


def check_tcb_covered(project_files: list[str], report: Report) -> None:
    """Every .py under the TCB folders is trusted, and so is its byte-code.

    A missing source fails the import under the strict file policy. Missing byte-code does not
    fail (CPython falls back to the trusted source) but recompiles the module on every start.
    """
    trusted = set(project_files)
    compiled = {source_of(rel) for rel in trusted if rel.endswith(".pyc")}
    for source in tcb_sources():
        if source not in trusted:
            report.add("module-not-trusted", f"{source} is in the TCB ({_TCB_NAMES}) but not trusted")
        elif source not in compiled:
            report.add("pyc-not-trusted", f"{source} is trusted but its byte-code is not")


def check_pycs(project_files: list[str], report: Report, root: Path = PROJECT_ROOT) -> None:
    """Trusted byte-code must be checked-hash pycs of the current, existing source.

    A timestamp pyc is trusted as long as the host-supplied mtime of its source matches, so a
    stale one could run instead of the measured source. A checked-hash pyc is verified against
    the (also trusted) source on every import.
    """
    for rel in project_files:
        if not rel.endswith(".pyc"):
            continue
        pyc, src = root / rel, root / source_of(rel)
        if not pyc.exists():
            continue  # reported as trusted-file-missing
        if not src.exists():
            report.add("pyc-stale", f"{rel} has no source {source_of(rel)}; run `make enclave-pyc`")
            continue
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if flags != 0b11:
            report.add("pyc-stale", f"{rel} is not a checked-hash pyc; run `make enclave-pyc`")
        elif header[8:16] != importlib.util.source_hash(src.read_bytes()):
            report.add("pyc-stale", f"{rel} does not match {source_of(rel)}; run `make enclave-pyc`")


def source_of(rel: str) -> str:
    """enclave/state/__pycache__/mount.cpython-311.pyc -> enclave/state/mount.py."""
    p = Path(rel)
    if p.suffix == ".pyc" and p.parent.name == "__pycache__":
        return (p.parent.parent / (p.name.split(".")[0] + ".py")).as_posix()
    return rel


def _refusal(rel: str) -> tuple[str, str] | None:
    """(finding id, reason) if this project file must never be trusted, else None."""
    src = source_of(rel)
    parts = Path(src).parts
    if rel in ("", ".") or not parts:
        return "trusted-forbidden", "the whole repository"
    if Path(rel).suffix in KEY_FILE_SUFFIXES or any("pki" in q.lower() for q in parts):
        return "trusted-forbidden", "a key or PKI file"
    if tcb_folder(src) is None:
        return "trusted-outside-tcb", f"outside the TCB folders {_TCB_NAMES}"
    return None


def _project_relative(path: Path) -> str | None:
    """'enclave/x.py' for a file of this repository (venvs excluded), else None."""
    try:
        rel = path.resolve(strict=False).relative_to(PROJECT_ROOT) if path.is_absolute() else path
    except ValueError:
        return None
    if rel.parts and rel.parts[0] in VENV_DIRS:
        return None
    return rel.as_posix()


@functools.cache
def _walk_files(directory: Path) -> tuple[Path, ...]:
    """Files gramine-manifest would measure under a trusted directory (no symlinked dirs).

    Cached: a check walks the same system and stdlib trees for every profile and test.
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not Path(root, d).is_symlink())
        found.extend(Path(root, name) for name in sorted(files))
    return tuple(found)


@functools.cache
def _file_info(path: Path) -> tuple[Path, int] | None:
    """(real path, size) of a regular file, else None. Cached like _walk_files."""
    if not path.is_file():
        return None
    return path.resolve(), path.stat().st_size


def _is_system(path: Path) -> bool:
    """Under the arch libdirs (trusted whole, as in Gramine's Python example)."""
    arch = arch_libdir()
    return path.is_relative_to(arch) or path.is_relative_to(f"/usr{arch}")
