"""Shared libraries: the loader inside Gramine must open exactly the trusted files.

The template resolves libraries once at render time with ldd, on the host, where the
interpreter's RUNPATH is searched. Inside Gramine the loader searches loader.env.LD_LIBRARY_PATH
first (then RUNPATH; there is no ld.so.cache), so a directory early in LD_LIBRARY_PATH that holds
another file of the same name wins: the first real run from a pyenv Python found Debian's
libpython3.11.so.1.0 in /lib/<arch>, whose own dependency libexpat.so.1 nobody had trusted, and
died with "error while loading shared libraries". Two findings, both computed from the files on
this machine the way glibc's loader searches (DT_RPATH, LD_LIBRARY_PATH, DT_RUNPATH):

- library-shadowed: a trusted library whose name the loader finds first at another path;
- library-dependency-untrusted: a DT_NEEDED entry of a trusted ELF file that the loader would
  load from an untrusted file, or not find at all.

glibc's own libraries come from Gramine's runtime (/lib, which exists only with Gramine
installed), so their names are not followed.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import STANDIN_PKGLIBDIR
from manifests.gramine_check.schema import env_value
from manifests.gramine_check.trusted_files import listing_key, trusted_entries

# Provided by Gramine's patched glibc in its runtime directory (mounted at /lib).
GLIBC_NAMES = frozenset({
    "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libmvec.so.1", "libpthread.so.0",
    "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2", "libanl.so.1",
    "libBrokenLocale.so.1", "libnsl.so.1", "libnss_files.so.2", "libnss_dns.so.2",
    "libnss_compat.so.2", "libnss_db.so.2", "libthread_db.so.1",
})
RUNTIME_MOUNT = "/lib"  # gramine.runtimedir(): its contents are not known to this checker

_DT_NEEDED, _DT_RPATH, _DT_RUNPATH = 1, 15, 29
_SHT_DYNAMIC = 6


@dataclass(frozen=True)
class Dynamic:
    """What the loader reads from an ELF file's dynamic section."""

    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]


def is_library_name(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


@functools.cache
def read_dynamic(path: Path) -> Dynamic | None:
    """DT_NEEDED, DT_RPATH and DT_RUNPATH of a 64-bit little-endian ELF file, else None.

    Read through the section headers (SHT_DYNAMIC and the string table it links to), which
    every linked library and executable has; a file that is not such an ELF is not a library.
    Only the headers and those two sections are read, not the whole file.
    """
    try:
        with path.open("rb") as f:
            return _read_dynamic(f)
    except (OSError, struct.error):
        return None


def _read_dynamic(f: BinaryIO) -> Dynamic | None:
    header = f.read(64)
    if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", header, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
    if shentsize != 64:
        return None
    f.seek(shoff)
    table = f.read(shnum * 64)
    sections = [struct.unpack_from("<IIQQQQIIQQ", table, i * 64) for i in range(shnum)]
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, _entsize in sections:
        if sh_type != _SHT_DYNAMIC or link >= shnum:
            continue
        f.seek(sections[link][4])
        strings = f.read(sections[link][5])
        f.seek(offset)
        dynamic = f.read(size)
        values: dict[int, list[str]] = {_DT_NEEDED: [], _DT_RPATH: [], _DT_RUNPATH: []}
        for pos in range(0, len(dynamic) - 15, 16):
            tag, value = struct.unpack_from("<qQ", dynamic, pos)
            if tag == 0:
                break
            if tag in values and value < len(strings):
                end = strings.find(b"\0", value)
                values[tag].append(os.fsdecode(strings[value:end if end >= 0 else None]))
        rpath = [d for v in values[_DT_RPATH] for d in v.split(":") if d]
        runpath = [d for v in values[_DT_RUNPATH] for d in v.split(":") if d]
        return Dynamic(tuple(values[_DT_NEEDED]), tuple(rpath), tuple(runpath))
    return Dynamic((), (), ())


def _expand(directory: str, origin: Path) -> str:
    return directory.replace("${ORIGIN}", str(origin)).replace("$ORIGIN", str(origin))


def search_order(obj: Path, dynamic: Dynamic, ld_library_path: list[str]) -> list[str]:
    """Directories glibc's loader tries for obj's DT_NEEDED names, in order (no ld.so.cache)."""
    origin = obj.parent
    rpath = [] if dynamic.runpath else [_expand(d, origin) for d in dynamic.rpath]
    return rpath + ld_library_path + [_expand(d, origin) for d in dynamic.runpath]


def resolve(name: str, directories: list[str]) -> Path | None:
    """The first directory's file of that name, as the loader opens it (on the host)."""
    for directory in directories:
        if directory == RUNTIME_MOUNT:
            continue  # Gramine's runtime: only glibc's names, and unknown here
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def check_libraries(manifest: dict[str, Any], report: Report) -> None:
    env = manifest.get("loader", {}).get("env", {})
    ld_library_path = [d for d in str(env_value(env.get("LD_LIBRARY_PATH")) or "").split(":") if d]
    entrypoint = manifest.get("libos", {}).get("entrypoint")
    trusted: dict[Path, str] = {}
    elves: list[Path] = []
    for entry in trusted_entries(manifest):
        if entry.is_dir_uri or not entry.uri.removeprefix("file:").startswith("/"):
            continue
        if entry.path.is_relative_to(STANDIN_PKGLIBDIR) or not entry.path.is_file():
            continue
        trusted[listing_key(entry.path)] = entry.uri
        if is_library_name(entry.path.name) or str(entry.path) == entrypoint:
            elves.append(entry.path)
    for path in elves:
        name = path.name
        if str(path) != entrypoint and name not in GLIBC_NAMES:
            found = resolve(name, ld_library_path)
            if found is not None and listing_key(found) != listing_key(path):
                report.add(
                    "library-shadowed",
                    f"{path} is trusted, but LD_LIBRARY_PATH finds {found} first: the loader "
                    "opens that one (put the trusted library's directory earlier)",
                )
        dynamic = read_dynamic(path)
        if dynamic is None:
            continue
        order = search_order(path, dynamic, ld_library_path)
        for needed in dynamic.needed:
            if needed in GLIBC_NAMES:
                continue
            found = resolve(needed, order)
            if found is None:
                report.add("library-dependency-untrusted",
                           f"{path} needs {needed}, which the loader finds nowhere")
            elif listing_key(found) not in trusted:
                report.add("library-dependency-untrusted",
                           f"{path} needs {needed}; the loader would open {found}, which is not trusted")
