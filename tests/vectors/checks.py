"""Every vector file's check, by file name (``CHECKS``, in ``loader.FILES`` order), and
``check_all``, which runs them all.

Each check lives with its construct: ``checks_inputs`` (keys, policy, REPORTDATA, requests),
``checks_upload``, ``checks_session`` (result, receipts, audit chain, frames), ``checks_witness``,
``checks_msgpack``, ``checks_attestation``, ``checks_template`` and ``checks_http``.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.vectors.checks_attestation import check_attestation
from tests.vectors.checks_common import Vectors
from tests.vectors.checks_http import check_http
from tests.vectors.checks_inputs import check_keys, check_policy, check_report_data, check_requests
from tests.vectors.checks_msgpack import check_msgpack
from tests.vectors.checks_session import check_audit, check_frames, check_receipts, check_result
from tests.vectors.checks_template import check_template
from tests.vectors.checks_upload import check_upload
from tests.vectors.checks_witness import check_witness

__all__ = ["CHECKS", "check_all"]

CHECKS: dict[str, Callable[[Vectors], None]] = {
    "keys": check_keys, "policy": check_policy, "report_data": check_report_data,
    "requests": check_requests, "upload": check_upload, "result": check_result,
    "receipts": check_receipts, "audit": check_audit, "frames": check_frames,
    "witness": check_witness, "msgpack": check_msgpack, "attestation": check_attestation,
    "template": check_template, "http": check_http,
}


def check_all(v: Vectors) -> None:
    for check in CHECKS.values():
        check(v)
