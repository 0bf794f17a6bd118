"""Run every check for one profile: render, parse, schema, profile, mounts, libraries, trusted files.

What this cannot check: paths that exist only with Gramine installed (the runtime dir with the
patched glibc, libsysdb.so) are checked for shape, not existence; MRENCLAVE needs libpal and
gramine-sgx-sign (`make measurement`; the bill of materials of the trusted files needs neither);
enclave_size/max_threads are only enforced under SGX; whether Gramine accepts a mount point that
does not exist in its parent mount (e.g. the venv under a tmpfs /tmp) is only seen at run time.
"""

from __future__ import annotations

from pathlib import Path

from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import DEFAULT_TEMPLATE, ENCLAVE_VENV, PROFILES, STANDIN_PKGLIBDIR
from manifests.gramine_check.libraries import check_libraries
from manifests.gramine_check.mounts import check_mounts
from manifests.gramine_check.profile import check_profile
from manifests.gramine_check.render import default_variables, load
from manifests.gramine_check.schema import check_schema
from manifests.gramine_check.trusted_files import check_pycs, check_tcb_covered, check_trusted


def check(
    profile: str = "sgx",
    template: Path = DEFAULT_TEMPLATE,
    defines: dict[str, str] | None = None,
) -> Report:
    """Render ``template`` for ``profile`` ("sgx" or "direct") and check it."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}")
    variables = default_variables(profile) | (defines or {})
    report = Report(profile=profile, template=str(template), variables=variables)
    if not Path(variables["entrypoint"]).is_relative_to(ENCLAVE_VENV):
        report.notes.append(
            f"enclave venv {ENCLAVE_VENV} absent or not used: sys.path taken "
            f"from {variables['entrypoint']} (run `make enclave-venv`)"
        )
    report.notes.append(f"Gramine runtime paths ({STANDIN_PKGLIBDIR}) are checked for shape only")
    manifest = load(template, variables, report)
    if manifest is None:
        return report
    check_schema(manifest, report)
    check_profile(manifest, profile, report)
    check_mounts(manifest, profile, report)
    check_libraries(manifest, report)
    project_files = check_trusted(manifest, report)
    check_tcb_covered(project_files, report)
    check_pycs(project_files, report)
    return report


def trusted_sources(template: Path = DEFAULT_TEMPLATE, defines: dict[str, str] | None = None) -> list[str]:
    """The repository's .py files the SGX manifest trusts (relative paths, sorted)."""
    report = Report("sgx", str(template), default_variables("sgx") | (defines or {}))
    manifest = load(template, report.variables, report)
    if manifest is None:
        raise SystemExit("\n".join(map(str, report.findings)))
    return sorted({f for f in check_trusted(manifest, report) if f.endswith(".py")})
