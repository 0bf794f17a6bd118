"""Where things are: the project root, the template, the venvs and the two TCB folders.

The trusted code base is exactly ``enclave/`` and ``protocol/`` (docs/design.md). Every rule
about project files is phrased by folder, so a new module is covered the day it is created and
no list of module names has to be kept in step by hand.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = PROJECT_ROOT / "manifests" / "cleanroom-enclave.manifest.template"
ENCLAVE_VENV = PROJECT_ROOT / ".venv-enclave"
# Inside the repository but not project code: their files count as the Python runtime.
VENV_DIRS = frozenset({".venv", ".venv-enclave"})

# The only project folders the manifest may trust, and every .py under them must be trusted.
TCB_DIRS = ("enclave", "protocol")

# Where Debian/Ubuntu packages put Gramine. Used only as a stand-in; never checked for existence.
STANDIN_PKGLIBDIR = Path("/usr/lib/x86_64-linux-gnu/gramine")

PROFILES = ("sgx", "direct")


def tcb_sources() -> list[str]:
    """Every .py under the TCB folders, as sorted project-relative POSIX paths."""
    return sorted(
        path.relative_to(PROJECT_ROOT).as_posix()
        for folder in TCB_DIRS
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def tcb_folder(rel: str) -> str | None:
    """'enclave' for 'enclave/state/mount.py'; None for a path outside the TCB folders."""
    top = rel.split("/", 1)[0]
    return top if top in TCB_DIRS and "/" in rel else None
