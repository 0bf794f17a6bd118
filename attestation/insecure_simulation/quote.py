"""SIMULATION ONLY: a byte-exact SGX quote v3, signed with no SGX hardware behind it.

The header and the enclave's report body carry the caller's measurements and REPORTDATA; the
signature data holds a fresh attestation key's signature, a simulated QE report that binds that
key, the PCK leaf's signature over it, and the PEM chain PCK ── PCK CA ── root. Host side;
never loaded in the enclave.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric import ec

from attestation.insecure_simulation.platform_values import (
    CPU_SVN,
    PCE_SVN,
    QE_ATTRIBUTES,
    QE_MR_ENCLAVE,
    QE_MR_SIGNER,
    QE_PROD_ID,
    QE_SVN,
)
from attestation.insecure_simulation.x509 import raw_public_key, sign_raw
from attestation.verifier.quote_layout import (
    ATTRIBUTE_DEBUG,
    INTEL_QE_VENDOR_ID,
    REPORT_BODY_SIZE,
    SIGNED_SIZE,
    body_field,
    field,
)

__all__ = ["assemble_quote"]

_ENCLAVE_XFRM = 0x03
_ATTRIBUTE_INIT_MODE64 = 0x05
_QE_AUTH_DATA = bytes(range(32))
_CERT_DATA_PEM_CHAIN = 5


def _report_body(
    *,
    cpu_svn: bytes,
    attributes: bytes,
    mr_enclave: bytes,
    mr_signer: bytes,
    isv_prod_id: int,
    isv_svn: int,
    report_data: bytes,
) -> bytes:
    body = bytearray(REPORT_BODY_SIZE)
    body[body_field("cpu_svn")] = cpu_svn
    body[body_field("attributes")] = attributes
    body[body_field("mr_enclave")] = mr_enclave
    body[body_field("mr_signer")] = mr_signer
    body[body_field("isv_prod_id")] = isv_prod_id.to_bytes(2, "little")
    body[body_field("isv_svn")] = isv_svn.to_bytes(2, "little")
    body[body_field("report_data")] = report_data
    return bytes(body)


def _check_bytes(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")


def _check_u16(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be an integer in 0..65535")


def assemble_quote(
    report_data: bytes,
    *,
    pck_key: ec.EllipticCurvePrivateKey,
    pck_chain_pem: bytes,
    mr_enclave: bytes,
    mr_signer: bytes,
    isv_prod_id: int,
    isv_svn: int,
    debug: bool,
) -> bytes:
    """The quote over ``report_data``; ``pck_chain_pem`` is PCK leaf, PCK CA, root, in PEM."""
    _check_bytes("report_data", report_data, 64)
    _check_bytes("mr_enclave", mr_enclave, 32)
    _check_bytes("mr_signer", mr_signer, 32)
    _check_u16("isv_prod_id", isv_prod_id)
    _check_u16("isv_svn", isv_svn)

    header = bytearray(SIGNED_SIZE)
    header[field("version")] = (3).to_bytes(2, "little")
    header[field("att_key_type")] = (2).to_bytes(2, "little")  # ECDSA-256 with P-256
    header[field("qe_svn")] = QE_SVN.to_bytes(2, "little")
    header[field("pce_svn")] = PCE_SVN.to_bytes(2, "little")
    header[field("qe_vendor_id")] = INTEL_QE_VENDOR_ID
    flags = _ATTRIBUTE_INIT_MODE64 | (ATTRIBUTE_DEBUG if debug else 0)
    header[48:SIGNED_SIZE] = _report_body(
        cpu_svn=CPU_SVN,
        attributes=struct.pack("<QQ", flags, _ENCLAVE_XFRM),
        mr_enclave=mr_enclave,
        mr_signer=mr_signer,
        isv_prod_id=isv_prod_id,
        isv_svn=isv_svn,
        report_data=report_data,
    )
    signed = bytes(header)

    # A fresh attestation key per quote, as a quoting enclave would certify.
    att_key = ec.generate_private_key(ec.SECP256R1())
    att_pub = raw_public_key(att_key)
    qe_report_data = hashlib.sha256(att_pub + _QE_AUTH_DATA).digest() + bytes(32)
    qe_report = _report_body(
        cpu_svn=CPU_SVN,
        attributes=QE_ATTRIBUTES,
        mr_enclave=QE_MR_ENCLAVE,
        mr_signer=QE_MR_SIGNER,
        isv_prod_id=QE_PROD_ID,
        isv_svn=QE_SVN,
        report_data=qe_report_data,
    )
    signature_data = b"".join(
        [
            sign_raw(att_key, signed),
            att_pub,
            qe_report,
            sign_raw(pck_key, qe_report),
            struct.pack("<H", len(_QE_AUTH_DATA)),
            _QE_AUTH_DATA,
            struct.pack("<HI", _CERT_DATA_PEM_CHAIN, len(pck_chain_pem)),
            pck_chain_pem,
        ]
    )
    return signed + struct.pack("<I", len(signature_data)) + signature_data
