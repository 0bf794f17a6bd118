"""The saved-result file a party keeps (``cleanroom query --save``) for checks without the host.

``{"format": 1, "signed": base64, "attestation": bundle}``: the exact signed result bytes next to
the attestation bundle that pins the enclave's signing key. ``cleanroom.offline_check`` re-verifies
both; nothing here verifies anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from cleanroom.result_open import Result
from protocol.errors import InvalidInput

__all__ = ["SAVED_RESULT_FORMAT", "load_saved_result", "save_result"]

SAVED_RESULT_FORMAT = 1


def save_result(path: str | os.PathLike[str], result: Result, bundle: dict[str, Any]) -> None:
    """Write ``{"format": 1, "signed": b64, "attestation": bundle}`` (never overwrites)."""
    doc = {"format": SAVED_RESULT_FORMAT, "signed": base64.b64encode(result.signed).decode(),
           "attestation": bundle}
    with open(path, "x", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def load_saved_result(path: str | os.PathLike[str]) -> tuple[bytes, dict[str, Any]]:
    """The signed result bytes and the attestation bundle of a saved-result file (unverified).

    :raise InvalidInput: not a saved-result file of this format.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{path}: not a saved-result JSON file") from None
    if not isinstance(doc, dict) or doc.get("format") != SAVED_RESULT_FORMAT:
        raise InvalidInput(f"{path}: not a format-{SAVED_RESULT_FORMAT} saved result")
    if set(doc) != {"format", "signed", "attestation"} or not isinstance(doc["attestation"], dict):
        raise InvalidInput(f"{path}: expected exactly the fields format, signed, attestation")
    try:
        signed = base64.b64decode(doc["signed"], validate=True)
    except (TypeError, binascii.Error, ValueError):
        raise InvalidInput(f"{path}: field 'signed' is not base64") from None
    return signed, doc["attestation"]
