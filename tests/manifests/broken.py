"""Broken templates, made from the real one by textual substitution so they cannot rot.

Every substitution must match exactly once and change the text, so a template edit that moves
a target makes the test fail loudly instead of silently testing the unbroken template.
"""

from __future__ import annotations

from pathlib import Path

from manifests.gramine_check.layout import DEFAULT_TEMPLATE

# The line of the real template after which extra trusted files are inserted.
TRUSTED_ANCHOR = '  "file:{{ venv_dir }}/pyvenv.cfg",\n'


def variant(tmp_path: Path, *substitutions: tuple[str, str]) -> Path:
    """Path of a copy of the real template with each (old, new) substitution applied."""
    text = DEFAULT_TEMPLATE.read_text()
    for old, new in substitutions:
        assert text.count(old) == 1, f"substitution target not found exactly once: {old!r}"
        changed = text.replace(old, new)
        assert changed != text
        text = changed
    path = tmp_path / "broken.manifest.template"
    path.write_text(text)
    return path


def trust_extra(uri: str) -> tuple[str, str]:
    """The substitution that adds one more trusted file: URI to the real template."""
    return TRUSTED_ANCHOR, f'{TRUSTED_ANCHOR}  "file:{uri}",\n'
