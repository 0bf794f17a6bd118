"""Shared libraries: what the loader opens inside Gramine must be what the manifest trusts.

The first real gramine-direct run (a pyenv Python, whose libpython3.11.so.1.0 ldd finds through
RUNPATH) died with "libexpat.so.1: cannot open shared object file": the template had trusted
Debian's libpython3.11.so.1.0 from /lib/<arch> instead, because a file of that name was there,
and inside Gramine LD_LIBRARY_PATH (searched before RUNPATH) does open that one; its dependency
libexpat was trusted by nobody. These tests build small ELF files, so they need neither Gramine
nor a particular Python.
"""

from __future__ import annotations

import struct
import tomllib
from pathlib import Path
from typing import Any

import pytest

from manifests.gramine_check import render as render_module
from manifests.gramine_check.checker import check
from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import DEFAULT_TEMPLATE
from manifests.gramine_check.libraries import GLIBC_NAMES, check_libraries, read_dynamic
from manifests.gramine_check.render import default_variables, render
from tests.manifests.broken import variant

LIBRARY_IDS = {"library-shadowed", "library-dependency-untrusted"}


def write_elf(path: Path, needed: list[str], runpath: str = "") -> Path:
    """A minimal 64-bit little-endian ELF file: a .dynstr and a .dynamic section, nothing else."""
    strings = b"\0"
    offsets = []
    for name in [*needed, runpath] if runpath else needed:
        offsets.append(len(strings))
        strings += name.encode() + b"\0"
    entries = [(1, off) for off in offsets[: len(needed)]]  # DT_NEEDED
    if runpath:
        entries.append((29, offsets[-1]))  # DT_RUNPATH
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in [*entries, (0, 0)])
    strtab_off = 64
    dynamic_off = strtab_off + len(strings)
    shoff = dynamic_off + len(dynamic)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 0)
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, strtab_off, len(strings), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 0, 6, 0, 0, dynamic_off, len(dynamic), 1, 0, 8, 16),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + strings + dynamic + b"".join(sections))
    return path


def manifest(trusted: list[Path], ld_library_path: list[Path]) -> dict[str, Any]:
    return {
        "libos": {"entrypoint": "/nonexistent/python"},
        "loader": {"env": {"LD_LIBRARY_PATH": ":".join(["/lib", *map(str, ld_library_path)])}},
        "sgx": {"trusted_files": [f"file:{p}" for p in trusted]},
    }


def findings(data: dict[str, Any]) -> list[str]:
    report = Report("sgx", "fixture", {})
    check_libraries(data, report)
    return [str(f) for f in report.findings]


def test_read_dynamic_of_a_built_file(tmp_path: Path) -> None:
    lib = write_elf(tmp_path / "libx.so.1", ["libdep.so.2", "libc.so.6"], runpath="/nonexistent/x/lib")
    dynamic = read_dynamic(lib)
    assert dynamic is not None
    assert dynamic.needed == ("libdep.so.2", "libc.so.6")
    assert dynamic.runpath == ("/nonexistent/x/lib",)
    assert read_dynamic(write_text(tmp_path / "notes.so", "not an ELF file")) is None


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_untrusted_dependency(tmp_path: Path) -> None:
    """The libpython case: a trusted library needs a file nobody trusted."""
    arch = tmp_path / "arch"
    lib = write_elf(arch / "libpython3.11.so.1.0", ["libexpat.so.1", "libm.so.6"])
    write_elf(arch / "libexpat.so.1", [])
    out = findings(manifest([lib], [arch]))
    assert len(out) == 1 and out[0].startswith("library-dependency-untrusted"), out
    assert "libexpat.so.1" in out[0]
    assert findings(manifest([lib, arch / "libexpat.so.1"], [arch])) == []


def test_dependency_found_nowhere(tmp_path: Path) -> None:
    lib = write_elf(tmp_path / "arch" / "libz.so.1", ["libgone.so.3"])
    out = findings(manifest([lib], [tmp_path / "arch"]))
    assert len(out) == 1 and "finds nowhere" in out[0], out


def test_runpath_dependency_is_followed(tmp_path: Path) -> None:
    """A dependency found through DT_RUNPATH (after LD_LIBRARY_PATH) must be trusted too."""
    own = tmp_path / "pyenv" / "lib"
    dep = write_elf(own / "libffi.so.8", [])
    lib = write_elf(tmp_path / "venv" / "_ctypes.so", ["libffi.so.8"], runpath=str(own))
    assert findings(manifest([lib, dep], [tmp_path / "arch"])) == []
    assert [f.split(":")[0] for f in findings(manifest([lib], [tmp_path / "arch"]))] == [
        "library-dependency-untrusted"
    ]


def test_shadowed_library(tmp_path: Path) -> None:
    """A trusted library at its own path, but an earlier LD_LIBRARY_PATH entry has the name."""
    own, arch = tmp_path / "pyenv" / "lib", tmp_path / "arch"
    trusted = write_elf(own / "libpython3.11.so.1.0", ["libm.so.6"])
    write_elf(arch / "libpython3.11.so.1.0", ["libexpat.so.1"])
    out = findings(manifest([trusted], [arch, own]))
    assert [f.split(":")[0] for f in out] == ["library-shadowed"], out
    # What the template now emits: the library's own directory before the arch libdirs.
    assert findings(manifest([trusted], [own, arch])) == []


def test_glibc_names_are_left_to_gramines_runtime(tmp_path: Path) -> None:
    lib = write_elf(tmp_path / "arch" / "libz.so.1", sorted(GLIBC_NAMES))
    assert findings(manifest([lib], [tmp_path / "arch"])) == []


def _first_system_library() -> str:
    variables = default_variables("sgx")
    libs = [lib for lib in render_module._ldd(variables["entrypoint"]) if Path(lib).name not in GLIBC_NAMES]
    if not libs:
        text = render(DEFAULT_TEMPLATE, variables)
        trusted = tomllib.loads(text)["sgx"]["trusted_files"]
        so = [u.removeprefix("file:") for u in trusted if isinstance(u, str) and u.endswith(".so")]
        libs = [lib for lib in render_module._ldd(*so[:40]) if Path(lib).name not in GLIBC_NAMES]
    if not libs:
        pytest.skip("the interpreter and its extension modules link no library besides glibc")
    return libs[0]


@pytest.fixture
def same_name_in_arch(tmp_path: Path) -> tuple[dict[str, str], str]:
    """An arch libdir holding another file named like a library ldd resolves elsewhere."""
    real = _first_system_library()
    arch = tmp_path / "arch"
    write_elf(arch / Path(real).name, ["libcleanroom-nowhere.so.1"])
    return {"arch_libdir": str(arch)}, real


def test_template_trusts_the_library_ldd_found(same_name_in_arch: tuple[dict[str, str], str]) -> None:
    defines, real = same_name_in_arch
    report = check("sgx", defines=defines)
    assert not LIBRARY_IDS & report.ids(), [str(f) for f in report.findings]
    text = render(DEFAULT_TEMPLATE, default_variables("sgx") | defines)
    data = tomllib.loads(text)
    assert f"file:{real}" in data["sgx"]["trusted_files"]
    assert f"file:{defines['arch_libdir']}/{Path(real).name}" not in data["sgx"]["trusted_files"]
    dirs = data["loader"]["env"]["LD_LIBRARY_PATH"].split(":")
    assert dirs.index(str(Path(real).parent)) < dirs.index(defines["arch_libdir"])


def test_template_rule_of_the_failed_run_is_caught(
    tmp_path: Path, same_name_in_arch: tuple[dict[str, str], str]
) -> None:
    """The rule before the fix (any file of that name in the arch libdir) trips the check."""
    defines, _ = same_name_in_arch
    broken = variant(
        tmp_path,
        (
            '{%- elif project_root.joinpath(arch_libdir, name).is_file() and '
            'project_root.joinpath(arch_libdir, name).resolve() == real %}',
            "{%- elif project_root.joinpath(arch_libdir, name).is_file() %}",
        ),
    )
    report = check("sgx", broken, defines=defines)
    assert "library-dependency-untrusted" in report.ids(), [str(f) for f in report.findings]
