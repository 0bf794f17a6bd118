"""--skip-invalid through a real host and enclave: the signed receipt states what was left out.

The skipped counts travel in the party-signed upload header; the enclave copies them into its
receipt, and the client refuses a receipt that does not repeat them. Without it, a refused cell
stops the stream before its last chunk, so the enclave accepts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from attestation.verifier.verify import VerifierPolicy
from cleanroom.tables import RefusedCell
from protocol.policy import parse_policy
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow
ALLOW_SIMULATION = VerifierPolicy(allow_simulation=True)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, policy_bytes) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("e2e-validation")
    with HostDeployment(tmp, policy_bytes) as host:
        yield {"client": host.client, "policy": parse_policy(policy_bytes),
               "policy_bytes": policy_bytes, "tmp": tmp}


def _conversions(tmp: Path) -> Path:
    path = tmp / "conversions.csv"
    rows = [f"p{i}@x.org,{i}.50" for i in range(200)]
    rows[17] = "nobody,1"  # refused identifier
    rows[99] = "q@x.org,twelve"  # refused metric
    rows[150] = ",3"  # empty identifier
    path.write_text("email,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_skip_invalid_is_signed_into_the_receipt(deployment, parties) -> None:
    client, policy = deployment["client"], deployment["policy"]
    path = _conversions(deployment["tmp"])
    enclave = client.verify(deployment["policy_bytes"], ALLOW_SIMULATION)
    with pytest.raises(RefusedCell, match=r"line 19, column 'email'.*'nobody'"):
        client.upload(enclave, parties["advertiser"], policy, "conversions", path)
    assert client.uploads() == []  # the stream stopped before its last chunk
    receipt = client.upload(enclave, parties["advertiser"], policy, "conversions", path,
                            skip_invalid=True)
    assert receipt.rows == 197
    assert receipt.skipped == (("id", 2), ("value", 1))
    assert "skipped:  3 invalid rows left out (id 2, value 1)" in "\n".join(receipt.summary_lines())
    [listed] = client.uploads()
    assert listed["rows"] == 197
