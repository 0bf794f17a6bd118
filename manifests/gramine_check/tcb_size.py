"""`make tcb-size`: the line count of the trusted code base, folder by folder.

The TCB is exactly enclave/ and protocol/, so the count is every line of every .py there (blank
lines and comments included: a reviewer reads them too). The rendered manifest is compared with
the folders first: a count is only meaningful if it is also what the manifest measures.
"""

from __future__ import annotations

from pathlib import Path

from manifests.gramine_check.checker import trusted_sources
from manifests.gramine_check.layout import DEFAULT_TEMPLATE, PROJECT_ROOT, TCB_DIRS, tcb_folder, tcb_sources


def count_lines(rel: str) -> int:
    return len((PROJECT_ROOT / rel).read_bytes().splitlines())


def tcb_size(
    template: Path = DEFAULT_TEMPLATE, defines: dict[str, str] | None = None
) -> tuple[list[str], int]:
    """(output lines, exit status): per-file counts, per-folder subtotals, the total.

    Exit status 1 when the manifest trusts other project sources than the TCB folders hold
    (`make gramine-check` names the findings); the folders are still counted.
    """
    sources = tcb_sources()
    measured = set(trusted_sources(template, defines))
    out = [f"{count_lines(rel):7d} {rel}" for rel in sources]
    for folder in TCB_DIRS:
        files = [rel for rel in sources if tcb_folder(rel) == folder]
        subtotal = sum(count_lines(rel) for rel in files)
        out.append(f"{subtotal:7d} {folder}/ subtotal ({len(files)} files)")
    out.append(f"{sum(count_lines(rel) for rel in sources):7d} total")
    mismatch = [f"not trusted by the manifest: {rel}" for rel in sources if rel not in measured]
    mismatch += [f"trusted but outside the TCB: {rel}" for rel in sorted(measured - set(sources))]
    if mismatch:
        out += ["tcb-size: the manifest does not trust exactly the TCB folders", *mismatch]
    return out, 1 if mismatch else 0
