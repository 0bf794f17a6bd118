"""The manifest checker's tests run against the real tree: compile its byte-code first."""

from __future__ import annotations

import compileall
import contextlib
import py_compile

import pytest

from manifests.gramine_check.layout import PROJECT_ROOT, TCB_DIRS


@pytest.fixture(scope="module", autouse=True)
def _project_pycs() -> None:
    """What `make enclave-pyc` does: the template trusts checked-hash byte-code of the TCB.

    From the project root with relative paths, as make does: byte-code embeds the path it was
    compiled from, so compiling /work/x/enclave instead would change the measured bytes.
    """
    with contextlib.chdir(PROJECT_ROOT):
        for folder in TCB_DIRS:
            assert compileall.compile_dir(
                folder,
                quiet=1,
                force=True,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
