"""SIMULATION ONLY: the simulation PKI's keys and certificates, and how they are kept on disk.

    root CA ── PCK (Processor) CA ── PCK leaf (SGX extension 1.2.840.113741.1.13.1)
            └─ TCB signer (signs TCB info v3 and QE identity v2)

Shaped like Intel's (docs/verifying.md). The keys are written unencrypted (files 0600, directory
0700): whoever holds them can forge any "enclave". Host side; never loaded in the enclave.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.insecure_simulation.der import SGX_EXTENSION_OID, sgx_extension_der
from attestation.insecure_simulation.platform_values import COMPONENT_SVNS, CPU_SVN, FMSPC, PCE_ID, PCE_SVN
from attestation.insecure_simulation.x509 import issue_cert, pem

__all__ = ["PARTS", "SETTINGS_FILE", "Certs", "Keys", "issue_hierarchy", "read_hierarchy", "write_hierarchy"]

PARTS = ("root-ca", "pck-ca", "pck", "tcb-signer")
SETTINGS_FILE = "simulation-pki.json"

Keys = dict[str, ec.EllipticCurvePrivateKey]
Certs = dict[str, x509.Certificate]


def issue_hierarchy() -> tuple[Keys, Certs]:
    """Fresh keys for every part and the certificates that chain them to a new root."""
    keys = {part: ec.generate_private_key(ec.SECP256R1()) for part in PARTS}
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
            component_svns=COMPONENT_SVNS,
            pce_svn=PCE_SVN,
            cpu_svn=CPU_SVN,
            pce_id=PCE_ID,
            fmspc=FMSPC,
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
    return keys, certs


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_hierarchy(directory: Path, keys: Keys, certs: Certs, settings: dict[str, Any]) -> None:
    """Write every key, certificate and ``settings``; refuses to overwrite (FileExistsError)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Settings last: their presence marks a complete PKI for load_or_create.
    for part in PARTS:
        key_pem = keys[part].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(directory / f"{part}.key.pem", key_pem)
        _write_private(directory / f"{part}.cert.pem", pem(certs[part]).encode())
    _write_private(directory / SETTINGS_FILE, json.dumps(settings, indent=2).encode())


def read_hierarchy(directory: Path) -> tuple[Keys, Certs, dict[str, Any]]:
    """What ``write_hierarchy`` wrote: keys, certificates and settings."""
    settings = json.loads((directory / SETTINGS_FILE).read_text())
    if settings.get("format") != 1:
        raise ValueError("unsupported simulation PKI format")
    keys: Keys = {}
    certs: Certs = {}
    for part in PARTS:
        key = serialization.load_pem_private_key((directory / f"{part}.key.pem").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("simulation PKI keys must be EC keys")
        keys[part] = key
        certs[part] = x509.load_pem_x509_certificate((directory / f"{part}.cert.pem").read_bytes())
    return keys, certs, settings
