"""The party side of the clean room: a Python client and the ``cleanroom`` CLI.

A party verifies the enclave's attestation, pins its keys, encrypts its dataset to them, runs
the analyses the policy allows and checks every signed receipt and result. Nothing here trusts
the host. Every path that trusts an enclave key verifies it with
``cleanroom.enclave_verification.evaluate_enclave``. ``attestation.verifier.verify`` (and
dcap-qvl) is imported only when a verification runs, and each name below only when first used.
See README.md in this folder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cleanroom.client import Client as Client
    from cleanroom.client import UploadProgress as UploadProgress
    from cleanroom.enclave_verification import evaluate_enclave as evaluate_enclave
    from cleanroom.identifiers import hash_identifiers as hash_identifiers
    from cleanroom.identifiers import normalizer as normalizer
    from cleanroom.keys import PartyKeys as PartyKeys
    from cleanroom.keys import PublicKeys as PublicKeys
    from cleanroom.keys import bind_keys_into_policy as bind_keys_into_policy
    from cleanroom.keys import load_public as load_public
    from cleanroom.offline_check import check_audit_download as check_audit_download
    from cleanroom.offline_check import check_saved_result as check_saved_result
    from cleanroom.receipts import Receipt as Receipt
    from cleanroom.receipts import verify_receipt as verify_receipt
    from cleanroom.result_display import render_table as render_table
    from cleanroom.result_files import save_result as save_result
    from cleanroom.result_open import Result as Result
    from cleanroom.result_open import open_result as open_result
    from cleanroom.result_open import verify_signed_result as verify_signed_result
    from cleanroom.tables import open_table as open_table
    from cleanroom.tables import read_all as read_all
    from cleanroom.upload_crypto import UploadEncryptor as UploadEncryptor

# Imported on first use, so `import cleanroom.cli` (and `cleanroom --help`) stays light.
_LAZY = {
    "Client": "cleanroom.client",
    "UploadProgress": "cleanroom.client",
    "evaluate_enclave": "cleanroom.enclave_verification",
    "hash_identifiers": "cleanroom.identifiers",
    "normalizer": "cleanroom.identifiers",
    "PartyKeys": "cleanroom.keys",
    "PublicKeys": "cleanroom.keys",
    "bind_keys_into_policy": "cleanroom.keys",
    "load_public": "cleanroom.keys",
    "check_audit_download": "cleanroom.offline_check",
    "check_saved_result": "cleanroom.offline_check",
    "Receipt": "cleanroom.receipts",
    "verify_receipt": "cleanroom.receipts",
    "render_table": "cleanroom.result_display",
    "save_result": "cleanroom.result_files",
    "Result": "cleanroom.result_open",
    "open_result": "cleanroom.result_open",
    "verify_signed_result": "cleanroom.result_open",
    "open_table": "cleanroom.tables",
    "read_all": "cleanroom.tables",
    "UploadEncryptor": "cleanroom.upload_crypto",
}

__all__ = [
    "Client",
    "PartyKeys",
    "PublicKeys",
    "Receipt",
    "Result",
    "UploadEncryptor",
    "UploadProgress",
    "bind_keys_into_policy",
    "check_audit_download",
    "check_saved_result",
    "evaluate_enclave",
    "hash_identifiers",
    "load_public",
    "normalizer",
    "open_result",
    "open_table",
    "read_all",
    "render_table",
    "save_result",
    "verify_receipt",
    "verify_signed_result",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
