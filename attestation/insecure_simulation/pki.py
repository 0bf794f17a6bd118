"""SIMULATION ONLY: a throwaway DCAP PKI that signs SGX quotes with no SGX hardware behind them.

Runs on the HOST in simulation and gramine-direct modes (DESIGN.md §3). It must never be loaded
in the enclave and stays out of ``sgx.trusted_files``: whoever holds these keys can forge any
"enclave". It mirrors Intel's PKI (reference/dcap-attestation.md §6) so that a simulated quote is
a byte-exact SGX quote v3 checked by the same ``dcap_qvl.verify_with_root_ca`` code as a real one:

    root CA ── PCK (Processor) CA ── PCK leaf (SGX extension 1.2.840.113741.1.13.1)
            └─ TCB signer (signs TCB info v3 and QE identity v2)
    root CRL (by the root), PCK CRL (by the PCK CA)

Only the trust anchor differs, and a verifier accepts it only with an explicit opt-in. The
measurements default to obviously fake values (``SIM_MR_ENCLAVE``, ``SIM_MR_SIGNER``). Certificate,
CRL and signature helpers live in ``_sim_x509``, the hand-written SGX extension DER in ``_sim_der``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.insecure_simulation.der import SGX_EXTENSION_OID, sgx_extension_der
from attestation.insecure_simulation.x509 import crl, intel_date, issue_cert, pem, raw_public_key, sign_raw
from attestation.verifier.quote_layout import (
    ATTRIBUTE_DEBUG,
    INTEL_QE_VENDOR_ID,
    REPORT_BODY_SIZE,
    SIGNED_SIZE,
    body_field,
    field,
)
from attestation.verifier.verifier_policy import TCB_STATUSES as ACCEPTABLE_TCB_STATUSES

__all__ = ["SIM_MR_ENCLAVE", "SIM_MR_SIGNER", "TCB_STATUSES", "SimulationPki"]

SIM_MR_ENCLAVE = hashlib.sha256(b"cleanroom/simulation/mrenclave/v1").digest()
SIM_MR_SIGNER = hashlib.sha256(b"cleanroom/simulation/mrsigner/v1").digest()

# The statuses a verifier may accept, plus "Revoked", which tests need a PKI to be able to issue.
TCB_STATUSES = (*ACCEPTABLE_TCB_STATUSES, "Revoked")

# The simulated platform. Values are arbitrary but self-consistent: the PCK certificate, the
# TCB info level and the quote header must agree for dcap-qvl to pick a TCB level.
_COMPONENT_SVNS = (4, 4, 2, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_CPU_SVN = bytes(_COMPONENT_SVNS)
_PCE_SVN = 13
_PCE_ID = bytes(2)
_FMSPC = bytes.fromhex("00C1EA000000")
# The simulated quoting enclave; the QE identity we sign names exactly these values.
_QE_MR_SIGNER = hashlib.sha256(b"cleanroom/simulation/qe-mrsigner/v1").digest()
_QE_MR_ENCLAVE = hashlib.sha256(b"cleanroom/simulation/qe-mrenclave/v1").digest()
_QE_PROD_ID = 1
_QE_SVN = 8
_QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
_ENCLAVE_XFRM = 0x03
_ATTRIBUTE_INIT_MODE64 = 0x05
_QE_AUTH_DATA = bytes(range(32))
_CERT_DATA_PEM_CHAIN = 5

# The short-lived parts (CRLs, TCB info, QE identity) are minted per call to
# collateral_json(now), valid from an hour before now for 30 days, like Intel's collateral.
_COLLATERAL_BACKDATE = 3600
_COLLATERAL_LIFETIME = 30 * 24 * 3600

_SETTINGS_FILE = "simulation-pki.json"
_PARTS = ("root-ca", "pck-ca", "pck", "tcb-signer")


# --- helpers --------------------------------------------------------------------------------------


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


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# --- the PKI ------------------------------------------------------------------------------------


class SimulationPki:
    """Keys and certificates of one deployment's simulation PKI, plus what it signs.

    ``tcb_status``, ``advisory_ids`` and ``revoke_pck`` choose what the collateral says about the
    simulated platform, so tests can exercise OutOfDate, revoked and other refusals.
    """

    def __init__(
        self,
        keys: dict[str, ec.EllipticCurvePrivateKey],
        certs: dict[str, x509.Certificate],
        *,
        directory: Path,
        tcb_status: str,
        advisory_ids: Sequence[str],
        revoke_pck: bool,
    ) -> None:
        if tcb_status not in TCB_STATUSES:
            raise ValueError("unknown TCB status")
        self._keys = keys
        self._certs = certs
        self.directory = directory
        self.tcb_status = tcb_status
        self.advisory_ids = tuple(advisory_ids)
        self.revoke_pck = revoke_pck

    # construction and storage

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        tcb_status: str = "UpToDate",
        advisory_ids: Sequence[str] = (),
        revoke_pck: bool = False,
    ) -> SimulationPki:
        """Generate a new PKI and write it to ``directory`` (keys unencrypted, files 0600).

        :raise FileExistsError: the directory already holds a PKI.
        """
        if tcb_status not in TCB_STATUSES:
            raise ValueError("unknown TCB status")
        keys = {part: ec.generate_private_key(ec.SECP256R1()) for part in _PARTS}
        root = issue_cert("Cleanroom SIMULATION SGX Root CA", keys["root-ca"], None, keys["root-ca"], ca=True)
        pck_ca = issue_cert(
            "Cleanroom SIMULATION SGX PCK Processor CA",
            keys["pck-ca"],
            root,
            keys["root-ca"],
            ca=True,
        )
        ppid = os.urandom(16)
        sgx_ext = x509.UnrecognizedExtension(
            x509.ObjectIdentifier(SGX_EXTENSION_OID),
            sgx_extension_der(
                ppid,
                component_svns=_COMPONENT_SVNS,
                pce_svn=_PCE_SVN,
                cpu_svn=_CPU_SVN,
                pce_id=_PCE_ID,
                fmspc=_FMSPC,
            ),
        )
        pck = issue_cert(
            "Cleanroom SIMULATION SGX PCK Certificate",
            keys["pck"],
            pck_ca,
            keys["pck-ca"],
            ca=False,
            extra=[sgx_ext],
        )
        tcb_signer = issue_cert(
            "Cleanroom SIMULATION SGX TCB Signing",
            keys["tcb-signer"],
            root,
            keys["root-ca"],
            ca=False,
        )
        certs = {"root-ca": root, "pck-ca": pck_ca, "pck": pck, "tcb-signer": tcb_signer}
        pki = cls(
            keys,
            certs,
            directory=Path(directory),
            tcb_status=tcb_status,
            advisory_ids=advisory_ids,
            revoke_pck=revoke_pck,
        )
        pki._save()
        return pki

    def _save(self) -> None:
        directory = self.directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings = {
            "format": 1,
            "warning": "SIMULATION ONLY: these keys can forge any enclave. Never trust them.",
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "revoke_pck": self.revoke_pck,
        }
        # Settings last: their presence marks a complete PKI for load_or_create.
        for part in _PARTS:
            key_pem = self._keys[part].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(directory / f"{part}.key.pem", key_pem)
            _write_private(directory / f"{part}.cert.pem", pem(self._certs[part]).encode())
        _write_private(directory / _SETTINGS_FILE, json.dumps(settings, indent=2).encode())

    @classmethod
    def load(cls, directory: str | Path) -> SimulationPki:
        """Read a PKI written by ``create``."""
        directory = Path(directory)
        settings = json.loads((directory / _SETTINGS_FILE).read_text())
        if settings.get("format") != 1:
            raise ValueError("unsupported simulation PKI format")
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        certs: dict[str, x509.Certificate] = {}
        for part in _PARTS:
            key = serialization.load_pem_private_key(
                (directory / f"{part}.key.pem").read_bytes(), password=None
            )
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("simulation PKI keys must be EC keys")
            keys[part] = key
            certs[part] = x509.load_pem_x509_certificate((directory / f"{part}.cert.pem").read_bytes())
        return cls(
            keys,
            certs,
            directory=directory,
            tcb_status=settings["tcb_status"],
            advisory_ids=settings["advisory_ids"],
            revoke_pck=bool(settings["revoke_pck"]),
        )

    @classmethod
    def load_or_create(cls, directory: str | Path) -> SimulationPki:
        if (Path(directory) / _SETTINGS_FILE).exists():
            return cls.load(directory)
        return cls.create(directory)

    @property
    def root_ca_der(self) -> bytes:
        """The simulation trust anchor, for ``dcap_qvl.verify_with_root_ca``."""
        return self._certs["root-ca"].public_bytes(serialization.Encoding.DER)

    # quotes

    def issue_quote(
        self,
        report_data: bytes,
        *,
        mr_enclave: bytes = SIM_MR_ENCLAVE,
        mr_signer: bytes = SIM_MR_SIGNER,
        isv_prod_id: int = 0,
        isv_svn: int = 0,
        debug: bool = False,
    ) -> bytes:
        """A byte-exact SGX quote v3 over ``report_data``, signed by this simulation PKI."""
        _check_bytes("report_data", report_data, 64)
        _check_bytes("mr_enclave", mr_enclave, 32)
        _check_bytes("mr_signer", mr_signer, 32)
        _check_u16("isv_prod_id", isv_prod_id)
        _check_u16("isv_svn", isv_svn)

        header = bytearray(SIGNED_SIZE)
        header[field("version")] = (3).to_bytes(2, "little")
        header[field("att_key_type")] = (2).to_bytes(2, "little")  # ECDSA-256 with P-256
        header[field("qe_svn")] = _QE_SVN.to_bytes(2, "little")
        header[field("pce_svn")] = _PCE_SVN.to_bytes(2, "little")
        header[field("qe_vendor_id")] = INTEL_QE_VENDOR_ID
        flags = _ATTRIBUTE_INIT_MODE64 | (ATTRIBUTE_DEBUG if debug else 0)
        header[48:SIGNED_SIZE] = _report_body(
            cpu_svn=_CPU_SVN,
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
            cpu_svn=_CPU_SVN,
            attributes=_QE_ATTRIBUTES,
            mr_enclave=_QE_MR_ENCLAVE,
            mr_signer=_QE_MR_SIGNER,
            isv_prod_id=_QE_PROD_ID,
            isv_svn=_QE_SVN,
            report_data=qe_report_data,
        )
        chain = "".join(pem(self._certs[p]) for p in ("pck", "pck-ca", "root-ca")).encode()
        signature_data = b"".join(
            [
                sign_raw(att_key, signed),
                att_pub,
                qe_report,
                sign_raw(self._keys["pck"], qe_report),
                struct.pack("<H", len(_QE_AUTH_DATA)),
                _QE_AUTH_DATA,
                struct.pack("<HI", _CERT_DATA_PEM_CHAIN, len(chain)),
                chain,
            ]
        )
        return signed + struct.pack("<I", len(signature_data)) + signature_data

    # collateral

    def _tcb_info(self, now: int) -> str:
        level: dict[str, object] = {
            "tcb": {
                "sgxtcbcomponents": [{"svn": svn} for svn in _COMPONENT_SVNS],
                "pcesvn": _PCE_SVN,
            },
            "tcbDate": "2024-01-01T00:00:00Z",
            "tcbStatus": self.tcb_status,
        }
        if self.advisory_ids:
            level["advisoryIDs"] = list(self.advisory_ids)
        return json.dumps(
            {
                "id": "SGX",
                "version": 3,
                "issueDate": intel_date(now - _COLLATERAL_BACKDATE),
                "nextUpdate": intel_date(now + _COLLATERAL_LIFETIME),
                "fmspc": _FMSPC.hex().upper(),
                "pceId": _PCE_ID.hex().upper(),
                "tcbType": 0,
                "tcbEvaluationDataNumber": 1,
                "tcbLevels": [level],
            },
            separators=(",", ":"),
        )

    def _qe_identity(self, now: int) -> str:
        return json.dumps(
            {
                "id": "QE",
                "version": 2,
                "issueDate": intel_date(now - _COLLATERAL_BACKDATE),
                "nextUpdate": intel_date(now + _COLLATERAL_LIFETIME),
                "tcbEvaluationDataNumber": 1,
                "miscselect": "00000000",
                "miscselectMask": "FFFFFFFF",
                "attributes": _QE_ATTRIBUTES.hex().upper(),
                "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
                "mrsigner": _QE_MR_SIGNER.hex().upper(),
                "isvprodid": _QE_PROD_ID,
                "tcbLevels": [
                    {
                        "tcb": {"isvsvn": _QE_SVN},
                        "tcbDate": "2024-01-01T00:00:00Z",
                        "tcbStatus": "UpToDate",
                    }
                ],
            },
            separators=(",", ":"),
        )

    def collateral_json(self, now: int) -> str:
        """Collateral in dcap-qvl's ``QuoteCollateralV3`` JSON layout, valid now-1h..now+30d."""
        root, root_key = self._certs["root-ca"], self._keys["root-ca"]
        signer_chain = pem(self._certs["tcb-signer"]) + pem(root)
        revoked = [self._certs["pck"].serial_number] if self.revoke_pck else []
        start, end = now - _COLLATERAL_BACKDATE, now + _COLLATERAL_LIFETIME
        tcb_info = self._tcb_info(now)
        qe_identity = self._qe_identity(now)
        signer = self._keys["tcb-signer"]
        return json.dumps(
            {
                "pck_crl_issuer_chain": pem(self._certs["pck-ca"]) + pem(root),
                "root_ca_crl": crl(root, root_key, this_update=start, next_update=end).hex(),
                "pck_crl": crl(
                    self._certs["pck-ca"],
                    self._keys["pck-ca"],
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
