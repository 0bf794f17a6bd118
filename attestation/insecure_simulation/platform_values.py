"""SIMULATION ONLY: the made-up SGX platform and quoting enclave that the simulation PKI describes.

Values are arbitrary but self-consistent: the PCK certificate (``hierarchy``), the quote
(``quote``) and the collateral (``collateral``) must agree for dcap-qvl to pick a TCB level. The
enclave measurements default to obviously fake values (``SIM_MR_ENCLAVE``, ``SIM_MR_SIGNER``).
Host side; never loaded in the enclave.
"""

from __future__ import annotations

import hashlib

from attestation.verifier.verifier_policy import TCB_STATUSES as ACCEPTABLE_TCB_STATUSES

__all__ = ["SIM_MR_ENCLAVE", "SIM_MR_SIGNER", "TCB_STATUSES"]

SIM_MR_ENCLAVE = hashlib.sha256(b"cleanroom/simulation/mrenclave/v1").digest()
SIM_MR_SIGNER = hashlib.sha256(b"cleanroom/simulation/mrsigner/v1").digest()

# The statuses a verifier may accept, plus "Revoked", which tests need a PKI to be able to issue.
TCB_STATUSES = (*ACCEPTABLE_TCB_STATUSES, "Revoked")

# The simulated platform.
COMPONENT_SVNS = (4, 4, 2, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
CPU_SVN = bytes(COMPONENT_SVNS)
PCE_SVN = 13
PCE_ID = bytes(2)
FMSPC = bytes.fromhex("00C1EA000000")
# The simulated quoting enclave; the QE identity we sign names exactly these values.
QE_MR_SIGNER = hashlib.sha256(b"cleanroom/simulation/qe-mrsigner/v1").digest()
QE_MR_ENCLAVE = hashlib.sha256(b"cleanroom/simulation/qe-mrenclave/v1").digest()
QE_PROD_ID = 1
QE_SVN = 8
QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
