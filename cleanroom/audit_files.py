"""The downloaded audit-log file (``cleanroom audit download``) for verification without the host.

``{"format": 1, "attestation": bundle, "entries": [base64, ...]}``: every published audit entry
next to the attestation bundle that pins the enclave's signing key. ``cleanroom.offline_check``
verifies both; nothing here verifies anything.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from protocol.errors import InvalidInput

__all__ = ["AUDIT_DOWNLOAD_FORMAT", "load_audit_download", "save_audit_download"]

AUDIT_DOWNLOAD_FORMAT = 1


def save_audit_download(path: str | os.PathLike[str], entries: list[bytes],
                        bundle: dict[str, Any]) -> None:
    """Write the entries and the bundle (never overwrites an existing file)."""
    doc = {"format": AUDIT_DOWNLOAD_FORMAT, "attestation": bundle,
           "entries": [base64.b64encode(e).decode() for e in entries]}
    with open(path, "x", encoding="utf-8") as out:
        json.dump(doc, out, indent=1)
        out.write("\n")


def load_audit_download(path: str | os.PathLike[str]) -> tuple[list[bytes], Any]:
    """The entries and the attestation bundle of a downloaded log (unverified).

    :raise InvalidInput: not a file written by ``save_audit_download``.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = [base64.b64decode(e, validate=True) for e in doc["entries"]]
        bundle = doc["attestation"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path}: not a file written by `cleanroom audit download`") from exc
    return entries, bundle
