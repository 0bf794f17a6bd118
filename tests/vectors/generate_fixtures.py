"""The fixed inputs of the vector session: the clock, the keys (SHA-256 of fixed labels), the
policy, the uploaded rows and the two party requests' fields.

Nothing here runs the project's code; the other ``generate_*`` modules and ``generate.build``
make the vector files from these.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cleanroom.keys import PartyKeys
from enclave.state.keys import EnclaveKeys

__all__ = [
    "ATTEST_NONCE",
    "CHUNK_SIZE",
    "CONVERSIONS",
    "DELETE",
    "IMPRESSIONS",
    "NOW",
    "PARTIES",
    "POLICY_TEMPLATE",
    "QUERY",
    "SKIPPED",
    "UPLOADED_AT",
    "enclave_keys",
    "fixed_seed",
    "hex_keys",
    "party_keys",
    "person_id",
]

NOW = 1_800_000_000  # the enclave's clock and every document's time (2027-01-15 08:00 UTC)
UPLOADED_AT = NOW - 120  # the upload headers' created_at
CHUNK_SIZE = 4096  # protocol.upload.CHUNK_MIN_PLAINTEXT: the smallest chunk size allowed
# One upload left invalid rows out (--skip-invalid): its header and receipt carry the counts.
SKIPPED = {"conversions": {"id": 2, "value": 1}}
ATTEST_NONCE = bytes(range(32))
PARTIES = ("publisher", "advertiser")

POLICY_TEMPLATE = """\
# The fixed policy of the wire test vectors (tests/vectors): small, so results are not suppressed.
format = 1
collaboration_id = "wire-test-vectors-v1"
description = "Golden wire vectors"
retention_days = 30

[[parties]]
id = "publisher"
display_name = "Publisher (test vectors)"
signing_key = "{publisher_signing}"
result_key = "{publisher_result}"

[[parties]]
id = "advertiser"
display_name = "Advertiser (test vectors)"
signing_key = "{advertiser_signing}"
result_key = "{advertiser_result}"

[[datasets]]
name = "impressions"
owner = "publisher"
id_column = "email"
id_normalization = "email"
max_rows = 1000

[[datasets.dimensions]]
name = "campaign"
values = ["spring", "summer", "autumn"]

[[datasets.metrics]]
name = "spend"
scale = 2
min = "0"
max = "100"

[[datasets]]
name = "conversions"
owner = "advertiser"
id_column = "email"
id_normalization = "email"
max_rows = 1000

[[datasets.metrics]]
name = "value"
scale = 2
min = "0"
max = "500"

[join]
datasets = ["impressions", "conversions"]

[privacy]
mode = "pure"
min_cohort_size = 1
max_cohorts_per_user = 2
max_rows_per_user = 4
epsilon_per_query_max = "1.0"
delta = "1e-9"
refresh = "none"

[privacy.budget]
impressions = "2.0"
conversions = "2.0"

[[analyses]]
id = "overlap"
kind = "overlap"
requesters = ["publisher", "advertiser"]
recipients = ["advertiser", "publisher"]
epsilon = "0.5"
group_by = ["impressions.campaign"]
max_group_by = 1
"""


def person_id(i: int) -> bytes:
    """A row id: SHA-256 of a fixed (already normalised) e-mail address."""
    return hashlib.sha256(f"person{i}@example.com".encode()).digest()


# Each inner list is one batch, so one chunk; rows are (person, dimension codes..., metrics...).
IMPRESSIONS = [[(0, 0, 1250), (1, 1, 300), (2, 0, 9999)], [(3, 2, 0), (1, 0, 10000)], [(4, 1, 42)]]
CONVERSIONS = [[(1, 2500), (3, 12000), (5, 50000)]]
QUERY = {"party": "advertiser", "analysis": "overlap", "params": {"group_by": ["impressions.campaign"]},
         "nonce": bytes.fromhex("00112233445566778899aabbccddeeff")}
DELETE = {"party": "publisher", "dataset": "impressions",
          "nonce": bytes.fromhex("ffeeddccbbaa99887766554433221100")}


def fixed_seed(label: str) -> bytes:
    return hashlib.sha256(b"cleanroom/test-vectors/v1/" + label.encode()).digest()


def enclave_keys() -> EnclaveKeys:
    return EnclaveKeys(X25519PrivateKey.from_private_bytes(fixed_seed("enclave/x25519")),
                       Ed25519PrivateKey.from_private_bytes(fixed_seed("enclave/ed25519")),
                       fixed_seed("enclave/join"), fixed_seed("enclave/release-seed"))


def party_keys() -> dict[str, PartyKeys]:
    return {p: PartyKeys(p, Ed25519PrivateKey.from_private_bytes(fixed_seed(f"{p}/ed25519")),
                         X25519PrivateKey.from_private_bytes(fixed_seed(f"{p}/x25519"))) for p in PARTIES}


def hex_keys(x25519_private: bytes, x25519_public: bytes, ed25519_seed: bytes,
             ed25519_public: bytes) -> dict[str, str]:
    return {"x25519_private": x25519_private.hex(), "x25519_public": x25519_public.hex(),
            "ed25519_seed": ed25519_seed.hex(), "ed25519_public": ed25519_public.hex()}
