"""The import path of the party's result handling, for callers written before it was split.

Each job has its own module; new code imports from there:

- ``cleanroom.result_open``     ``Result``, ``open_result``, ``verify_signed_result``
- ``cleanroom.receipts``        ``Receipt``, ``verify_receipt``, ``verify_deletion_receipt``
- ``cleanroom.result_files``    ``save_result``, ``load_saved_result``, ``SAVED_RESULT_FORMAT``
- ``cleanroom.offline_check``   ``check_saved_result`` (and ``check_audit_download``)
- ``cleanroom.result_display``  ``render_table``
"""

from __future__ import annotations

from cleanroom.offline_check import check_saved_result as check_saved_result
from cleanroom.receipts import Receipt as Receipt
from cleanroom.receipts import verify_deletion_receipt as verify_deletion_receipt
from cleanroom.receipts import verify_receipt as verify_receipt
from cleanroom.result_display import render_table as render_table
from cleanroom.result_files import SAVED_RESULT_FORMAT as SAVED_RESULT_FORMAT
from cleanroom.result_files import load_saved_result as load_saved_result
from cleanroom.result_files import save_result as save_result
from cleanroom.result_open import Result as Result
from cleanroom.result_open import open_result as open_result
from cleanroom.result_open import verify_signed_result as verify_signed_result

__all__ = [
    "SAVED_RESULT_FORMAT",
    "Receipt",
    "Result",
    "check_saved_result",
    "load_saved_result",
    "open_result",
    "render_table",
    "save_result",
    "verify_deletion_receipt",
    "verify_receipt",
    "verify_signed_result",
]
