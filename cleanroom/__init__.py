"""The party side of the clean room: a Python client and the ``cleanroom`` CLI.

A party verifies the enclave's attestation, pins its keys, encrypts its dataset to them, runs
the analyses the policy allows and checks every signed receipt and result. Nothing here trusts
the host. ``attestation.verifier.verify`` (and dcap-qvl) is imported only when a verification runs.
"""

from cleanroom.client import Client as Client
from cleanroom.client import UploadProgress as UploadProgress
from cleanroom.identifiers import hash_identifiers as hash_identifiers
from cleanroom.identifiers import normalizer as normalizer
from cleanroom.keys import PartyKeys as PartyKeys
from cleanroom.keys import PublicKeys as PublicKeys
from cleanroom.keys import bind_keys_into_policy as bind_keys_into_policy
from cleanroom.keys import load_public as load_public
from cleanroom.results import Receipt as Receipt
from cleanroom.results import Result as Result
from cleanroom.results import check_saved_result as check_saved_result
from cleanroom.results import open_result as open_result
from cleanroom.results import render_table as render_table
from cleanroom.results import save_result as save_result
from cleanroom.results import verify_receipt as verify_receipt
from cleanroom.results import verify_signed_result as verify_signed_result
from cleanroom.tables import open_table as open_table
from cleanroom.tables import read_all as read_all
from cleanroom.upload_crypto import UploadEncryptor as UploadEncryptor

__all__ = [
    "Client",
    "PartyKeys",
    "PublicKeys",
    "Receipt",
    "Result",
    "UploadEncryptor",
    "UploadProgress",
    "bind_keys_into_policy",
    "check_saved_result",
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
