"""What the adversarial tests share: marked party data, encrypted record streams, end checks.

The party data carries synthetic marker identifiers (``plaintext-marker-<tag>-<n>@example.com``).
The client hashes identifiers before encrypting, so what the enclave sees in plaintext is the
SHA-256 of the normalised marker; a leak of either the text or that digest (raw or hex) in a
response, the host log or any stored file is a confidentiality failure, and ``assert_no_leak``
looks for all of them.

Every attack test ends with ``assert_no_leak`` and ``assert_still_serving``: a clear error is not
enough if the host crashed, logged a traceback, or stopped serving the next valid request.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np

from attestation.verifier.verify import VerifierPolicy
from cleanroom.keys import PartyKeys
from cleanroom.tables import open_table
from cleanroom.upload_crypto import UploadEncryptor
from protocol.batch import encode_batch, rows_per_batch
from protocol.policy import Policy
from protocol.upload import CHUNK_MIN_PLAINTEXT, RECORD_HEADER
from tests.support.deployment import HostDeployment

__all__ = [
    "ALLOW_SIMULATION",
    "OCTET",
    "MarkedData",
    "SealedUpload",
    "assert_no_leak",
    "assert_still_serving",
    "encrypt_csv",
    "record",
]

ALLOW_SIMULATION = VerifierPolicy(allow_simulation=True)  # every deployment here is simulated
OCTET = {"Content-Type": "application/octet-stream"}
MARKER_PREFIX = "plaintext-marker-"
_HEX_RUN = re.compile(rb"[0-9a-f]{64,}")
# Host log lines that mean a crash path was taken (host/errors.py logs "unhandled error").
_CRASH_SIGNS = ("Traceback", "unhandled error", "internal enclave error")


@dataclass
class MarkedData:
    """CSV files whose identifiers are marker strings that must never leave the party."""

    directory: Path
    markers: list[str] = field(default_factory=list)
    _counter: itertools.count = field(default_factory=itertools.count)

    def _emails(self, tag: str, rows: int) -> list[str]:
        emails = [f"{MARKER_PREFIX}{tag}-{i}@example.com" for i in range(rows)]
        self.markers.extend(emails)
        return emails

    def impressions(self, policy: Policy, rows: int = 400) -> Path:
        spec = policy.dataset("impressions")
        assert spec is not None
        campaign, age, region = (spec.dimension(n) for n in ("campaign", "age_band", "region"))
        assert campaign and age and region
        path = self.directory / f"impressions-{next(self._counter)}.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "campaign", "age_band", "region"])
            for i, email in enumerate(self._emails(path.stem, rows)):
                writer.writerow([email, campaign.values[i % 2], age.values[i % 3], region.values[0]])
        return path

    def conversions(self, rows: int = 400) -> Path:
        path = self.directory / f"conversions-{next(self._counter)}.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "value"])
            for i, email in enumerate(self._emails(path.stem, rows)):
                writer.writerow([email, f"{10 + i % 50}.99"])
        return path

    def digests(self) -> set[bytes]:
        """What the enclave sees of each marker: SHA-256 of the normalised identifier."""
        return {hashlib.sha256(marker.lower().encode()).digest() for marker in self.markers}


def record(payload: bytes) -> bytes:
    return RECORD_HEADER.pack(len(payload)) + payload


@dataclass(frozen=True)
class SealedUpload:
    """One party's upload as the HTTP record stream, built exactly as the client builds it."""

    encryptor: UploadEncryptor
    records: tuple[bytes, ...]
    rows: int

    @property
    def body(self) -> bytes:
        return b"".join(self.records)

    @property
    def header_record(self) -> bytes:
        return self.records[0]

    @property
    def chunk_records(self) -> tuple[bytes, ...]:
        return self.records[1:]

    @property
    def upload_id(self) -> bytes:
        return self.encryptor.upload_id

    def header_fields(self) -> dict[str, bytes]:
        """Record 0 decoded: ``{header, signature}``."""
        return msgpack.unpackb(self.header_record[RECORD_HEADER.size:], raw=False)


def encrypt_csv(policy: Policy, keys: PartyKeys, dataset: str, path: Path, enc_pub: bytes,
                *, chunk_size: int = CHUNK_MIN_PLAINTEXT, mode: str = "append") -> SealedUpload:
    """Read, hash and encrypt a CSV with the client's own code; small chunks so there are many.

    ``mode`` goes in the signed header: ``append`` by default, so a test may upload again.
    """
    spec = policy.dataset(dataset)
    assert spec is not None
    schema = spec.schema()
    encryptor = UploadEncryptor(keys, policy, spec, enc_pub, chunk_size=chunk_size, mode=mode)
    with open_table(path, spec) as table:
        batches: Iterable[bytes] = (encode_batch(columns, schema)
                                    for columns in table.blocks(rows_per_batch(schema, chunk_size)))
        records = tuple(encryptor.records(batches))
        rows = table.rows_read
    return SealedUpload(encryptor, records, rows)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


class _LeakScanner:
    """Finds marker text and identifier digests (raw or hex) in bytes, in linear time.

    Hundreds of markers times dozens of files make naive substring search quadratic, so raw
    digests are found by their first 8 bytes with NumPy (one vectorised lookup per alignment)
    and hex digests by scanning hex runs.
    """

    def __init__(self, data: MarkedData) -> None:
        self.digests = data.digests()
        assert self.digests, "the test uploaded no marked data"
        self.hex = {d.hex().encode() for d in self.digests}
        self.prefixes = np.array(sorted(int.from_bytes(d[:8], "little") for d in self.digests),
                                 dtype=np.uint64)

    def find(self, haystack: bytes) -> str | None:
        if MARKER_PREFIX.encode() in haystack.lower():
            return "marker text"
        for run in _HEX_RUN.finditer(haystack.lower()):
            text = run.group()
            if any(text[i:i + 64] in self.hex for i in range(len(text) - 63)):
                return "hex identifier digest"
        raw = np.frombuffer(haystack, dtype=np.uint8)
        for offset in range(8):
            usable = (len(raw) - offset) // 8 * 8
            if usable <= 0:
                break
            words = raw[offset:offset + usable].view("<u8")
            for hit in np.flatnonzero(np.isin(words, self.prefixes)):
                start = offset + 8 * int(hit)
                if haystack[start:start + 32] in self.digests:
                    return "raw identifier digest"
        return None


def assert_no_leak(deployment: HostDeployment, data: MarkedData) -> None:
    """No marker text or identifier digest in any response, the host log, or any stored file."""
    scanner = _LeakScanner(data)
    haystacks = {"host log": deployment.log_path.read_bytes()}
    for i, body in enumerate(deployment.responses):
        haystacks[f"response {i}"] = body
    # Everything the host keeps: stored ciphertexts, results, the enclave's sealed state.
    for path in _files(deployment.state):
        haystacks[str(path.relative_to(deployment.state))] = path.read_bytes()
    for where, haystack in haystacks.items():
        found = scanner.find(haystack)
        assert found is None, f"{found} found in {where}"


def assert_still_serving(deployment: HostDeployment) -> None:
    """The host is alive, logged no crash, and answers the next valid requests."""
    assert deployment.alive(), "the host process died"
    assert deployment.request("GET", "/v1/health").status == 200
    assert deployment.request("GET", "/v1/uploads").status == 200
    bundle = deployment.request("GET", "/v1/attestation?nonce=" + "ab" * 32)
    assert bundle.status == 200 and bundle.json()["nonce"] == "ab" * 32
    log = deployment.log_text()
    for sign in _CRASH_SIGNS:
        assert sign not in log, f"host log shows a crash path: {sign!r}"
