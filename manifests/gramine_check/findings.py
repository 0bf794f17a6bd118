"""What a check run produces: findings with stable ids, notes, stats, and their two outputs.

Ids are short and stable because tests/manifests and scripts match on them; the message is for
people and may change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

_MIB = 1 << 20


@dataclass(frozen=True)
class Finding:
    """One problem: a short stable id (for tests and scripts) and a message for people."""

    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.id}: {self.message}"


@dataclass
class Report:
    """The outcome of one check run."""

    profile: str
    template: str
    variables: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def add(self, finding_id: str, message: str) -> None:
        self.findings.append(Finding(finding_id, message))

    @property
    def ok(self) -> bool:
        return not self.findings

    def ids(self) -> set[str]:
        return {f.id for f in self.findings}


def as_json(report: Report) -> str:
    """The --json output: everything in the report, plus the overall verdict."""
    data = asdict(report)
    data["ok"] = report.ok
    return json.dumps(data, indent=2)


def as_text(report: Report) -> str:
    """The human summary: what was rendered, how much it measures, and every finding."""
    s, v = report.stats, report.variables
    lines = [
        f"manifests.check: {report.template} rendered for profile {report.profile!r} "
        f"(mode={v.get('mode')}, ra_type={v.get('ra_type')}, debug={v.get('debug')})",
        f"  entrypoint: {v.get('entrypoint')}",
    ]
    if s:
        lines += [
            f"  trusted entries: {s.get('trusted_entries', 0)}; existing files they cover:",
            f"    project:  {s['project_files']:6d} files {s['project_bytes'] / _MIB:8.1f} MiB"
            "  (enclave/ and protocol/: sources and byte-code)",
            f"    python:   {s['python_files']:6d} files {s['python_bytes'] / _MIB:8.1f} MiB"
            "  (interpreter, venv, stdlib)",
            f"    system:   {s['system_files']:6d} files {s['system_bytes'] / _MIB:8.1f} MiB"
            "  (arch libdirs; hashed by gramine-manifest too)",
        ]
    lines += [f"  note: {note}" for note in report.notes]
    lines += [f"  FINDING {finding}" for finding in report.findings]
    lines.append(f"  {'OK' if report.ok else f'{len(report.findings)} finding(s)'}")
    return "\n".join(lines)
