"""The bill of materials of a measurement: every trusted file, its SHA-256 and where it came from.

MRENCLAVE is one hash over the manifest and every trusted file. A party that gets a different
value cannot see why from the value. The BOM lists each trusted file with its hash and origin:

    project   enclave/ and protocol/ of this repository (at the commit the builder names)
    wheel     a pinned wheel, by name and version, from the venv's *.dist-info/RECORD
    debian    a Debian package and version (dpkg -S / dpkg-query, where dpkg exists)
    gramine   Gramine's runtime (glibc), present only where Gramine is installed
    venv      the venv's own files (pyvenv.cfg, the bin/python link)
    unknown   anything else (e.g. a pyenv build): the hash still pins it

It needs no Gramine: it is made from the trusted list of a rendered manifest (the real one of
`make measurement`, or the stand-in render). `diff` names each file added, removed or changed
between two BOMs, with both origins, so the input that differs is visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from manifests.gramine_check.layout import PROJECT_ROOT, STANDIN_PKGLIBDIR, tcb_folder

FORMAT = "cleanroom-enclave-bom/1"
_SITE_DIRS = ("site-packages", "dist-packages")


def bill_of_materials(
    manifest: dict[str, Any], root: Path = PROJECT_ROOT, *, manifest_file: Path | None = None
) -> dict[str, Any]:
    """The BOM of a parsed manifest; relative file: URIs resolve against ``root``."""
    rows: list[dict[str, Any]] = []
    for uri, path, expected in _expanded(manifest, root):
        row: dict[str, Any] = {"uri": uri, "path": str(path)}
        if path.is_file():
            data = path.read_bytes()
            row |= {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            if expected and expected != row["sha256"]:
                row["manifest_sha256"] = expected  # the signed manifest measured other bytes
        else:
            row |= {"sha256": expected, "size": None, "missing": True}
        rows.append(row)
    origins = _origins([Path(r["path"]) for r in rows], root)
    for row in rows:
        row["origin"] = origins[Path(row["path"])]
    bom: dict[str, Any] = {"format": FORMAT, "files": sorted(rows, key=lambda r: r["uri"])}
    if manifest_file is not None:
        bom["manifest"] = {"path": str(manifest_file),
                           "sha256": hashlib.sha256(manifest_file.read_bytes()).hexdigest()}
    return bom


def dumps(bom: dict[str, Any]) -> str:
    return json.dumps(bom, indent=1, sort_keys=True) + "\n"


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """One line per difference: '+' only in b, '-' only in a, '~' other bytes. [] if equal."""
    out = []
    for key in ("mr_enclave", "manifest"):
        if a.get(key) != b.get(key):
            out.append(f"~ {key}: {_short(a.get(key))} -> {_short(b.get(key))}")
    old = {r["uri"]: r for r in a.get("files", [])}
    new = {r["uri"]: r for r in b.get("files", [])}
    for uri in sorted(old.keys() | new.keys()):
        x, y = old.get(uri), new.get(uri)
        if x is None:
            out.append(f"+ {uri} {_short(y['sha256'])} ({origin_text(y['origin'])})")
        elif y is None:
            out.append(f"- {uri} {_short(x['sha256'])} ({origin_text(x['origin'])})")
        elif x["sha256"] != y["sha256"] or x["origin"] != y["origin"]:
            out.append(
                f"~ {uri} {_short(x['sha256'])} ({origin_text(x['origin'])}) -> "
                f"{_short(y['sha256'])} ({origin_text(y['origin'])})"
            )
    return out


def origin_text(origin: dict[str, Any]) -> str:
    detail = " ".join(str(origin[k]) for k in ("name", "version") if origin.get(k))
    return f"{origin['kind']} {detail}".strip()


def _short(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("sha256")
    return str(value)[:16] if value else "none"


def _expanded(manifest: dict[str, Any], root: Path) -> Iterable[tuple[str, Path, str | None]]:
    """(uri, host path, sha256 the manifest gives or None) per file; directories walked."""
    for item in manifest.get("sgx", {}).get("trusted_files", []):
        uri = item.get("uri") if isinstance(item, dict) else item
        expected = item.get("sha256") if isinstance(item, dict) else None
        if not isinstance(uri, str):
            continue
        raw = uri.removeprefix("file:")
        path = Path(raw) if raw.startswith("/") else root / raw
        if not uri.endswith("/"):
            yield uri, path, expected
            continue
        if not path.is_dir():
            yield uri, path, None  # e.g. Gramine's runtime where Gramine is not installed
            continue
        for base, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                f = Path(base, name)
                yield f"file:{raw.rstrip('/')}/{f.relative_to(path).as_posix()}", f, None


def _origins(paths: list[Path], root: Path) -> dict[Path, dict[str, Any]]:
    found: dict[Path, dict[str, Any]] = {}
    wheels: dict[Path, dict[str, tuple[str, str]]] = {}
    rest: list[Path] = []
    for path in paths:
        rel = _relative(path, root)
        site = next((p for p in path.parents if p.name in _SITE_DIRS), None)
        if rel is not None and tcb_folder(rel) is not None:
            found[path] = {"kind": "project"}
        elif site is not None:
            if site not in wheels:
                wheels[site] = _record_index(site)
            index = wheels[site]
            hit = index.get(_key(path)) or index.get(_key(_source_of(path)))
            found[path] = ({"kind": "wheel", "name": hit[0], "version": hit[1]} if hit
                           else {"kind": "unknown"})
        elif path.is_relative_to(STANDIN_PKGLIBDIR) or "gramine" in path.parts:
            found[path] = {"kind": "gramine"}
            rest.append(path)
        else:
            rest.append(path)
    # Byte-code Debian compiles at install (py3compile) is in no file list: use its source's.
    sources = {path: _source_of(path) for path in rest}
    owners = dpkg_owners(sorted(set(rest) | set(sources.values())))
    for path in rest:
        hit = owners.get(path) or owners.get(sources[path])
        if hit:
            kind = found.get(path, {}).get("kind", "debian")  # Gramine's runtime keeps its kind
            found[path] = {"kind": kind, "name": hit[0], "version": hit[1]}
    for path in rest:
        found.setdefault(path, {"kind": "venv"} if (path.parent.parent / "pyvenv.cfg").is_file()
                         or path.name == "pyvenv.cfg" else {"kind": "unknown"})
    return found


def _record_index(site: Path) -> dict[str, tuple[str, str]]:
    """Every file pip recorded under ``site``: its key -> (distribution, version)."""
    index: dict[str, tuple[str, str]] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        meta = dict(
            line.split(": ", 1) for line in (record.parent / "METADATA").read_text(errors="replace")
            .split("\n\n", 1)[0].splitlines() if ": " in line
        )
        dist = (meta.get("Name", record.parent.name.split("-")[0]), meta.get("Version", "?"))
        for line in record.read_text().splitlines():
            rel = line.rsplit(",", 2)[0]
            if rel:
                index[_key(site / rel)] = dist
    return index


DPKG_INFO = Path("/var/lib/dpkg/info")


def dpkg_owners(paths: list[Path], info: Path = DPKG_INFO) -> dict[Path, tuple[str, str]]:
    """(package, version) of each path dpkg installed; {} without dpkg.

    Reads dpkg's file lists (<package>.list, what `dpkg -S` searches) once, rather than running
    `dpkg -S` per file, and asks dpkg-query for the versions. A path matches through /lib and
    /usr/lib alike (merged /usr) and through a symlinked directory.
    """
    if not paths or not info.is_dir() or shutil.which("dpkg-query") is None:
        return {}
    names: dict[str, Path] = {}
    for path in paths:
        for name in (str(path), _key(path), os.path.realpath(path)):
            names.setdefault(name, path)
            names.setdefault(name[4:] if name.startswith("/usr/") else "/usr" + name, path)
    owner: dict[Path, str] = {}
    for listing in sorted(info.glob("*.list")):
        for line in listing.read_text(errors="replace").splitlines():
            if line in names:
                owner.setdefault(names[line], listing.stem)
    if not owner:
        return {}
    query = ["dpkg-query", "-W", "-f=${binary:Package} ${Version}\n", *sorted(set(owner.values()))]
    run = subprocess.run(query, capture_output=True, text=True, check=False)
    versions = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    return {p: (pkg, versions.get(pkg, versions.get(pkg.split(":")[0], "?"))) for p, pkg in owner.items()}


def _key(path: Path) -> str:
    """The path with its directory resolved (one key through /lib -> /usr/lib and ../)."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def _source_of(path: Path) -> Path:
    """x/__pycache__/m.cpython-311.pyc -> x/m.py (byte-code compiled after pip ran)."""
    if path.suffix == ".pyc" and path.parent.name == "__pycache__":
        return path.parent.parent / (path.name.split(".")[0] + ".py")
    return path


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
