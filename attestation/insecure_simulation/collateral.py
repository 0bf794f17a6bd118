"""SIMULATION ONLY: DCAP collateral for the simulated platform, signed by the simulation PKI.

The short-lived parts (root and PCK CRLs, TCB info v3, QE identity v2) are minted per call,
valid from an hour before ``now`` for 30 days, like Intel's collateral, in dcap-qvl's
``QuoteCollateralV3`` JSON layout. ``tcb_status``, ``advisory_ids`` and ``revoke_pck`` choose
what they say about the platform. Host side; never loaded in the enclave.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from attestation.insecure_simulation.hierarchy import Certs, Keys
from attestation.insecure_simulation.platform_values import (
    COMPONENT_SVNS,
    FMSPC,
    PCE_ID,
    PCE_SVN,
    QE_ATTRIBUTES,
    QE_MR_SIGNER,
    QE_PROD_ID,
    QE_SVN,
)
from attestation.insecure_simulation.x509 import crl, intel_date, pem, sign_raw

__all__ = ["collateral_json", "qe_identity_json", "tcb_info_json"]

_COLLATERAL_BACKDATE = 3600
_COLLATERAL_LIFETIME = 30 * 24 * 3600


def tcb_info_json(now: int, tcb_status: str, advisory_ids: Sequence[str]) -> str:
    level: dict[str, object] = {
        "tcb": {
            "sgxtcbcomponents": [{"svn": svn} for svn in COMPONENT_SVNS],
            "pcesvn": PCE_SVN,
        },
        "tcbDate": "2024-01-01T00:00:00Z",
        "tcbStatus": tcb_status,
    }
    if advisory_ids:
        level["advisoryIDs"] = list(advisory_ids)
    return json.dumps(
        {
            "id": "SGX",
            "version": 3,
            "issueDate": intel_date(now - _COLLATERAL_BACKDATE),
            "nextUpdate": intel_date(now + _COLLATERAL_LIFETIME),
            "fmspc": FMSPC.hex().upper(),
            "pceId": PCE_ID.hex().upper(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": 1,
            "tcbLevels": [level],
        },
        separators=(",", ":"),
    )


def qe_identity_json(now: int) -> str:
    return json.dumps(
        {
            "id": "QE",
            "version": 2,
            "issueDate": intel_date(now - _COLLATERAL_BACKDATE),
            "nextUpdate": intel_date(now + _COLLATERAL_LIFETIME),
            "tcbEvaluationDataNumber": 1,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": QE_ATTRIBUTES.hex().upper(),
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": QE_MR_SIGNER.hex().upper(),
            "isvprodid": QE_PROD_ID,
            "tcbLevels": [
                {
                    "tcb": {"isvsvn": QE_SVN},
                    "tcbDate": "2024-01-01T00:00:00Z",
                    "tcbStatus": "UpToDate",
                }
            ],
        },
        separators=(",", ":"),
    )


def collateral_json(
    keys: Keys,
    certs: Certs,
    now: int,
    *,
    tcb_status: str,
    advisory_ids: Sequence[str],
    revoke_pck: bool,
) -> str:
    """Collateral in dcap-qvl's ``QuoteCollateralV3`` JSON layout, valid now-1h..now+30d."""
    root, root_key = certs["root-ca"], keys["root-ca"]
    signer_chain = pem(certs["tcb-signer"]) + pem(root)
    revoked = [certs["pck"].serial_number] if revoke_pck else []
    start, end = now - _COLLATERAL_BACKDATE, now + _COLLATERAL_LIFETIME
    tcb_info = tcb_info_json(now, tcb_status, advisory_ids)
    qe_identity = qe_identity_json(now)
    signer = keys["tcb-signer"]
    return json.dumps(
        {
            "pck_crl_issuer_chain": pem(certs["pck-ca"]) + pem(root),
            "root_ca_crl": crl(root, root_key, this_update=start, next_update=end).hex(),
            "pck_crl": crl(
                certs["pck-ca"],
                keys["pck-ca"],
                this_update=start,
                next_update=end,
                revoked_serials=revoked,
            ).hex(),
            "tcb_info_issuer_chain": signer_chain,
            "tcb_info": tcb_info,
            "tcb_info_signature": sign_raw(signer, tcb_info.encode()).hex(),
            "qe_identity_issuer_chain": signer_chain,
            "qe_identity": qe_identity,
            "qe_identity_signature": sign_raw(signer, qe_identity.encode()).hex(),
        }
    )
