"""Render the template the way ``gramine-manifest`` does, without Gramine installed.

Gramine's tools are not on PyPI, so this is a stand-in for graminelibos' Jinja environment,
written from its documented behaviour: the same globals (``gramine``, ``python``, ``env``,
``ldd``), StrictUndefined, the trailing newline kept. Rendering happens in the project root,
as manifests/gramine.mk runs the real tool: the template walks enclave/ and protocol/ from the
working directory, and its relative file: URIs resolve there.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2

from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import ENCLAVE_VENV, PROJECT_ROOT, STANDIN_PKGLIBDIR


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
    return list(_ldd_cached(tuple(os.fspath(b) for b in binaries)))


@functools.cache
def _ldd_cached(binaries: tuple[str, ...]) -> tuple[str, ...]:
    """One ldd run per set of binaries (tests render the template many times)."""
    try:
        out = subprocess.run(["ldd", *binaries], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ()
    libs = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            libs.add(parts[2])
        elif len(parts) >= 2 and parts[0].startswith("/"):
            libs.add(parts[0])
    return tuple(sorted(libs))


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
def arch_libdir() -> str:
    """This machine's multiarch libdir, as the Makefile computes it from `cc -dumpmachine`."""
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if not multiarch:
        multiarch = f"{platform.machine()}-linux-gnu"
    return f"/lib/{multiarch}"


def default_variables(profile: str) -> dict[str, str]:
    """The -D values `make gramine-manifest` passes, computed for this machine."""
    enclave_python = ENCLAVE_VENV / "bin" / "python"
    # Without the enclave venv, render with the running interpreter (a dev venv): the manifest's
    # shape is the same; only the sys.path entries differ (the report notes it).
    entrypoint = enclave_python if enclave_python.exists() else Path(sys.executable)
    return {
        "entrypoint": str(entrypoint),
        "arch_libdir": arch_libdir(),
        "ra_type": "dcap",
        "debug": "false",
        "log_level": "error",
        "state_dir": f"state/gramine-{profile}",
        "mode": profile,
    }


def render(template: Path, variables: dict[str, str]) -> str:
    """Render the template like `gramine-manifest -Dk=v ...` would (raises jinja2 errors)."""
    source = Path(template).resolve().read_text()
    # The real tool runs in the project root (gramine.mk); so must the stand-in, or the
    # template's walk of enclave/ and protocol/ would look in the caller's directory.
    with contextlib.chdir(PROJECT_ROOT):
        return _jinja_env().from_string(source).render(**variables)


def load(template: Path, variables: dict[str, str], report: Report) -> dict[str, Any] | None:
    """Render and parse; a template that does not render or parse is a finding, not a crash."""
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
