"""What a party accepts: the verifier policy, read from TOML and validated field by field.

Party side only (never loaded in the enclave). See ``policies/verifier-policy.example.toml``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attestation.verifier.values import hex32
from protocol.errors import PolicyInvalid

__all__ = ["TCB_STATUSES", "VerifierPolicy"]

# Intel's names. "Revoked" is absent on purpose: dcap-qvl never accepts it.
TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
)


def _u16_or_none(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise PolicyInvalid(f"{name} must be an integer in 0..65535")


def _str_tuple(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise PolicyInvalid(f"{name} must be a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise PolicyInvalid(f"{name} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class VerifierPolicy:
    """What a party accepts. Secure by default: only UpToDate, no simulation, no debug.

    Measurement: ``mr_enclaves`` is an allow-list of MRENCLAVE values (hex). ``mr_signer`` needs
    ``isv_prod_id`` (exact) and ``min_isv_svn`` (minimum). When both kinds are set, both must
    hold. When neither is set the quote is refused, with one exception: a simulated quote
    accepted under ``allow_simulation`` is measured against ``SIM_MR_ENCLAVE`` by default.

    ``max_collateral_age`` (seconds) is judged from the TCB info ``issueDate``.
    ``expected_policy_hash`` (hex SHA-256) pins the collaboration policy a bundle must carry;
    only ``evaluate_bundle`` can check it (a bare quote carries no policy).
    """

    mr_enclaves: tuple[str, ...] = ()
    mr_signer: str | None = None
    isv_prod_id: int | None = None
    min_isv_svn: int | None = None
    allowed_statuses: tuple[str, ...] = ("UpToDate",)
    rejected_advisories: tuple[str, ...] = ()
    allow_simulation: bool = False
    max_collateral_age: int | None = None
    expected_policy_hash: str | None = None

    def __post_init__(self) -> None:
        # Normalise here so that dataclasses.replace() re-validates every override too.
        enclaves = _str_tuple("mr_enclaves", self.mr_enclaves)
        norm = tuple(hex32("mr_enclaves entry", v) for v in enclaves)
        object.__setattr__(self, "mr_enclaves", norm)
        if self.mr_signer is not None:
            object.__setattr__(self, "mr_signer", hex32("mr_signer", self.mr_signer))
        _u16_or_none("isv_prod_id", self.isv_prod_id)
        _u16_or_none("min_isv_svn", self.min_isv_svn)
        has_ids = self.isv_prod_id is not None and self.min_isv_svn is not None
        if self.mr_signer is not None and not has_ids:
            raise PolicyInvalid("mr_signer needs isv_prod_id and min_isv_svn")
        if self.mr_signer is None and (self.isv_prod_id, self.min_isv_svn) != (None, None):
            raise PolicyInvalid("isv_prod_id and min_isv_svn only apply with mr_signer")
        statuses = _str_tuple("allowed_statuses", self.allowed_statuses)
        for status in statuses:
            if status not in TCB_STATUSES:
                raise PolicyInvalid(f"allowed_statuses: unknown TCB status {status!r}")
        object.__setattr__(self, "allowed_statuses", statuses)
        advisories = _str_tuple("rejected_advisories", self.rejected_advisories)
        object.__setattr__(self, "rejected_advisories", tuple(a.upper() for a in advisories))
        if not isinstance(self.allow_simulation, bool):
            raise PolicyInvalid("allow_simulation must be true or false")
        age = self.max_collateral_age
        if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 0):
            raise PolicyInvalid("max_collateral_age must be a non-negative number of seconds")
        if self.expected_policy_hash is not None:
            digest = hex32("expected_policy_hash", self.expected_policy_hash)
            object.__setattr__(self, "expected_policy_hash", digest)

    def replace(self, **changes: Any) -> VerifierPolicy:
        """A copy with some fields overridden (CLI flags over a policy file); re-validated."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, source: str | Path | bytes) -> VerifierPolicy:
        """Read a verifier policy (see ``policies/verifier-policy.example.toml``).

        ``source`` is a path, or the document's bytes. ``policy_file`` names the collaboration
        policy whose SHA-256 becomes ``expected_policy_hash``; a relative path is resolved
        against the TOML file's directory (the working directory for bytes).

        :raise PolicyInvalid: unreadable, not TOML, an unknown key (named), or a bad value.
        """
        if isinstance(source, bytes):
            text, base = source, Path.cwd()
        else:
            path = Path(source)
            try:
                text = path.read_bytes()
            except OSError:
                raise PolicyInvalid("verifier policy file cannot be read") from None
            base = path.parent
        try:
            doc = tomllib.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            raise PolicyInvalid("verifier policy is not valid TOML") from None
        known = {f.name for f in dataclasses.fields(cls)} | {"policy_file"}
        for key in doc:
            if key not in known:
                raise PolicyInvalid(f"unknown verifier policy key: {key}")
        policy_file = doc.pop("policy_file", None)
        if policy_file is not None:
            if "expected_policy_hash" in doc:
                raise PolicyInvalid("give policy_file or expected_policy_hash, not both")
            if not isinstance(policy_file, str):
                raise PolicyInvalid("policy_file must be a path")
            try:
                policy_bytes = (base / policy_file).read_bytes()
            except OSError:
                raise PolicyInvalid("policy_file cannot be read") from None
            doc["expected_policy_hash"] = hashlib.sha256(policy_bytes).hexdigest()
        return cls(**doc)
