"""SIMULATION ONLY: a throwaway DCAP PKI that signs SGX quotes with no SGX hardware behind them.

Runs on the HOST in simulation and gramine-direct modes (DESIGN.md §3). It must never be loaded
in the enclave and stays out of ``sgx.trusted_files``: whoever holds these keys can forge any
"enclave". It mirrors Intel's PKI (reference/dcap-attestation.md §6) so that a simulated quote is
a byte-exact SGX quote v3 checked by the same ``dcap_qvl.verify_with_root_ca`` code as a real one:

    root CA ── PCK (Processor) CA ── PCK leaf (SGX extension 1.2.840.113741.1.13.1)
            └─ TCB signer (signs TCB info v3 and QE identity v2)
    root CRL (by the root), PCK CRL (by the PCK CA)

Only the trust anchor differs, and a verifier accepts it only with an explicit opt-in. The
measurements default to obviously fake values (``SIM_MR_ENCLAVE``, ``SIM_MR_SIGNER``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation.quote_layout import (
    ATTRIBUTE_DEBUG,
    INTEL_QE_VENDOR_ID,
    REPORT_BODY_SIZE,
    SIGNED_SIZE,
    body_field,
    field,
)

__all__ = ["SIM_MR_ENCLAVE", "SIM_MR_SIGNER", "TCB_STATUSES", "SimulationPki"]

SIM_MR_ENCLAVE = hashlib.sha256(b"cleanroom/simulation/mrenclave/v1").digest()
SIM_MR_SIGNER = hashlib.sha256(b"cleanroom/simulation/mrsigner/v1").digest()

TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
)

# The simulated platform. Values are arbitrary but self-consistent: the PCK certificate, the
# TCB info level and the quote header must agree for dcap-qvl to pick a TCB level.
_COMPONENT_SVNS = (4, 4, 2, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_CPU_SVN = bytes(_COMPONENT_SVNS)
_PCE_SVN = 13
_PCE_ID = bytes(2)
_FMSPC = bytes.fromhex("00C1EA000000")
_SGX_TYPE_STANDARD = 0
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

# Certificates outlive any deployment; the short-lived parts (CRLs, TCB info, QE identity) are
# minted per call to collateral_json(now), like Intel's 30-day collateral.
_CERT_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_CERT_NOT_AFTER = dt.datetime(2049, 12, 31, tzinfo=dt.UTC)
_COLLATERAL_BACKDATE = 3600
_COLLATERAL_LIFETIME = 30 * 24 * 3600

_SETTINGS_FILE = "simulation-pki.json"
_PARTS = ("root-ca", "pck-ca", "pck", "tcb-signer")


# --- a tiny DER encoder, just enough for Intel's SGX PCK extension --------------------------


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _der_int(n: int, tag: int = 0x02) -> bytes:
    if n < 0:
        raise ValueError("only non-negative integers are needed here")
    return _der(tag, n.to_bytes(n.bit_length() // 8 + 1, "big"))  # +1 keeps the sign bit 0


def _der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


_SGX_OID = "1.2.840.113741.1.13.1"


def _sgx_extension_der(ppid: bytes) -> bytes:
    """Intel's SGX extension: PPID, TCB (16 component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC, type."""
    tcb = [
        _der_seq(_der_oid(f"{_SGX_OID}.2.{i}"), _der_int(svn))
        for i, svn in enumerate(_COMPONENT_SVNS, start=1)
    ]
    tcb.append(_der_seq(_der_oid(f"{_SGX_OID}.2.17"), _der_int(_PCE_SVN)))
    tcb.append(_der_seq(_der_oid(f"{_SGX_OID}.2.18"), _der(0x04, _CPU_SVN)))
    return _der_seq(
        _der_seq(_der_oid(f"{_SGX_OID}.1"), _der(0x04, ppid)),
        _der_seq(_der_oid(f"{_SGX_OID}.2"), _der_seq(*tcb)),
        _der_seq(_der_oid(f"{_SGX_OID}.3"), _der(0x04, _PCE_ID)),
        _der_seq(_der_oid(f"{_SGX_OID}.4"), _der(0x04, _FMSPC)),
        _der_seq(_der_oid(f"{_SGX_OID}.5"), _der_int(_SGX_TYPE_STANDARD, tag=0x0A)),
    )


# --- certificates -----------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cleanroom SIMULATION (insecure)"),
        ]
    )


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signer,
        content_commitment=not signer,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signer,
        crl_sign=signer,
        encipher_only=False,
        decipher_only=False,
    )


def _issue_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extra: Iterable[x509.ExtensionType] = (),
) -> x509.Certificate:
    # No EKU extension: webpki checks every chain for serverAuth, which passes only without EKU
    # (as in Intel's certificates) or with serverAuth listed.
    issuer_name = issuer.subject if issuer is not None else _name(subject)
    issuer_pub = issuer_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_CERT_NOT_BEFORE)
        .not_valid_after(_CERT_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_key_usage(signer=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), False)
    )
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: int,
    revoked_serials: Sequence[int] = (),
) -> bytes:
    this_update = _utc(now - _COLLATERAL_BACKDATE)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(_utc(now + _COLLATERAL_LIFETIME))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update).build()
        )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


# --- signatures and small helpers ---------------------------------------------------------------


def _utc(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _intel_date(t: int) -> str:
    return _utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-P256-SHA256 as SGX encodes it: raw big-endian r || s, 64 bytes."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _raw_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point[1:]  # drop the 0x04 prefix: SGX stores x || y


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


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
        root = _issue_cert(
            "Cleanroom SIMULATION SGX Root CA", keys["root-ca"], None, keys["root-ca"], ca=True
        )
        pck_ca = _issue_cert(
            "Cleanroom SIMULATION SGX PCK Processor CA",
            keys["pck-ca"],
            root,
            keys["root-ca"],
            ca=True,
        )
        sgx_ext = x509.UnrecognizedExtension(
            x509.ObjectIdentifier(_SGX_OID), _sgx_extension_der(os.urandom(16))
        )
        pck = _issue_cert(
            "Cleanroom SIMULATION SGX PCK Certificate",
            keys["pck"],
            pck_ca,
            keys["pck-ca"],
            ca=False,
            extra=[sgx_ext],
        )
        tcb_signer = _issue_cert(
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
            _write_private(directory / f"{part}.cert.pem", _pem(self._certs[part]).encode())
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
        att_pub = _raw_public_key(att_key)
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
        chain = "".join(_pem(self._certs[p]) for p in ("pck", "pck-ca", "root-ca")).encode()
        signature_data = b"".join(
            [
                _sign_raw(att_key, signed),
                att_pub,
                qe_report,
                _sign_raw(self._keys["pck"], qe_report),
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
                "issueDate": _intel_date(now - _COLLATERAL_BACKDATE),
                "nextUpdate": _intel_date(now + _COLLATERAL_LIFETIME),
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
                "issueDate": _intel_date(now - _COLLATERAL_BACKDATE),
                "nextUpdate": _intel_date(now + _COLLATERAL_LIFETIME),
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
        signer_chain = _pem(self._certs["tcb-signer"]) + _pem(root)
        revoked = [self._certs["pck"].serial_number] if self.revoke_pck else []
        tcb_info = self._tcb_info(now)
        qe_identity = self._qe_identity(now)
        signer = self._keys["tcb-signer"]
        return json.dumps(
            {
                "pck_crl_issuer_chain": _pem(self._certs["pck-ca"]) + _pem(root),
                "root_ca_crl": _crl(root, root_key, now).hex(),
                "pck_crl": _crl(self._certs["pck-ca"], self._keys["pck-ca"], now, revoked).hex(),
                "tcb_info_issuer_chain": signer_chain,
                "tcb_info": tcb_info,
                "tcb_info_signature": _sign_raw(signer, tcb_info.encode()).hex(),
                "qe_identity_issuer_chain": signer_chain,
                "qe_identity": qe_identity,
                "qe_identity_signature": _sign_raw(signer, qe_identity.encode()).hex(),
            }
        )
