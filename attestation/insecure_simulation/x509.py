"""SIMULATION ONLY: certificates, CRLs and SGX-style signatures for the simulation DCAP PKI.

Shaped like Intel's (docs/verifying.md) so dcap-qvl's own checks pass. Host side;
never loaded in the enclave.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = ["crl", "intel_date", "issue_cert", "pem", "raw_public_key", "sign_raw", "utc"]

# Certificates outlive any deployment; the short-lived parts (CRLs, TCB info, QE identity) are
# minted per call to SimulationPki.collateral_json(now), like Intel's 30-day collateral.
_CERT_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_CERT_NOT_AFTER = dt.datetime(2049, 12, 31, tzinfo=dt.UTC)


def utc(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def intel_date(t: int) -> str:
    return utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-P256-SHA256 as SGX encodes it: raw big-endian r || s, 64 bytes."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point[1:]  # drop the 0x04 prefix: SGX stores x || y


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


def issue_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extra: Iterable[x509.ExtensionType] = (),
) -> x509.Certificate:
    """A certificate for ``key`` signed by ``issuer_key``; ``issuer`` None means self-signed."""
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


def crl(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    this_update: int,
    next_update: int,
    revoked_serials: Sequence[int] = (),
) -> bytes:
    """A DER CRL with the CRLNumber and AKI webpki needs to treat it as authoritative."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(utc(this_update))
        .next_update(utc(next_update))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(utc(this_update)).build()
        )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
