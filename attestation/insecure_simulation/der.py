"""SIMULATION ONLY: a tiny DER encoder, just enough for Intel's SGX PCK certificate extension.

``cryptography`` cannot build this extension, so ``hierarchy`` writes its DER by hand. Host side;
never loaded in the enclave.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SGX_EXTENSION_OID", "der", "der_int", "der_oid", "der_seq", "sgx_extension_der"]

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
_SGX_TYPE_STANDARD = 0


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_seq(*items: bytes) -> bytes:
    return der(0x30, b"".join(items))


def der_int(n: int, tag: int = 0x02) -> bytes:
    if n < 0:
        raise ValueError("only non-negative integers are needed here")
    return der(tag, n.to_bytes(n.bit_length() // 8 + 1, "big"))  # +1 keeps the sign bit 0


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def sgx_extension_der(
    ppid: bytes,
    *,
    component_svns: Sequence[int],
    pce_svn: int,
    cpu_svn: bytes,
    pce_id: bytes,
    fmspc: bytes,
) -> bytes:
    """Intel's SGX extension: PPID, TCB (16 component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC, type."""
    oid = SGX_EXTENSION_OID
    tcb = [der_seq(der_oid(f"{oid}.2.{i}"), der_int(svn)) for i, svn in enumerate(component_svns, start=1)]
    tcb.append(der_seq(der_oid(f"{oid}.2.17"), der_int(pce_svn)))
    tcb.append(der_seq(der_oid(f"{oid}.2.18"), der(0x04, cpu_svn)))
    return der_seq(
        der_seq(der_oid(f"{oid}.1"), der(0x04, ppid)),
        der_seq(der_oid(f"{oid}.2"), der_seq(*tcb)),
        der_seq(der_oid(f"{oid}.3"), der(0x04, pce_id)),
        der_seq(der_oid(f"{oid}.4"), der(0x04, fmspc)),
        der_seq(der_oid(f"{oid}.5"), der_int(_SGX_TYPE_STANDARD, tag=0x0A)),
    )
