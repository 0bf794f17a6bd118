"""Party side: decide whether an enclave's quote (or attestation bundle) is acceptable.

dcap-qvl checks the signature chain, the collateral, the TCB level and the debug bit; it does not
look at what the enclave *is*. This module adds the project's checks, in a fixed order, each with
its own error class (DESIGN.md §4):

1. simulation gate      a non-Intel root needs ``allow_simulation``     SimulationNotAllowed
2. signature chain      dcap-qvl, Intel root or the simulation root     QuoteInvalid
3. collateral time      inside the TCB info / QE identity / CRL window  CollateralExpired
4. TCB status           in ``allowed_statuses``, no rejected advisory   TcbStatusNotAllowed
5. debug                the DEBUG attribute is off                      DebugEnclave
6. measurement          MRENCLAVE allow-list and/or MRSIGNER rule       MeasurementMismatch
7. REPORTDATA           equals the expected 64 bytes                    ReportDataMismatch
8. collateral age       TCB info issued at most ``max_collateral_age``  CollateralExpired

Never loaded in the enclave. Pure: ``now`` is a parameter; only the CLI reads the clock.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from attestation.quote_layout import QuoteFields, parse_quote_fields
from attestation.report_data import report_data as compute_report_data
from attestation.simulated import SIM_MR_ENCLAVE
from protocol.errors import (
    AttestationError,
    CleanroomError,
    CollateralExpired,
    DebugEnclave,
    MeasurementMismatch,
    PolicyInvalid,
    PolicyMismatch,
    ProtocolError,
    QuoteInvalid,
    ReportDataMismatch,
    SimulationNotAllowed,
    StaleNonce,
    TcbStatusNotAllowed,
)

__all__ = [
    "INTEL_ROOT_CA_SHA256",
    "TCB_STATUSES",
    "Check",
    "VerificationReport",
    "VerifiedEnclave",
    "VerifierPolicy",
    "evaluate_bundle",
    "evaluate_quote",
    "verify_bundle",
    "verify_quote",
]

# Fingerprint of Intel's SGX Root CA (the anchor built into dcap-qvl). A root given explicitly
# that has this fingerprint is Intel's, so the quote is not simulated.
INTEL_ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

# Intel's names. "Revoked" is absent on purpose: dcap-qvl never accepts it.
TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
)


# --- policy -------------------------------------------------------------------------------------


def _hex32(name: str, value: object, error: type[CleanroomError] = PolicyInvalid) -> str:
    if not isinstance(value, str):
        raise error(f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise error(f"{name} must be hex") from None
    if len(raw) != 32:
        raise error(f"{name} must be 32 bytes (64 hex digits)")
    return raw.hex()


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
    only ``verify_bundle`` can check it (a bare quote carries no policy).
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
        norm = tuple(_hex32("mr_enclaves entry", v) for v in enclaves)
        object.__setattr__(self, "mr_enclaves", norm)
        if self.mr_signer is not None:
            object.__setattr__(self, "mr_signer", _hex32("mr_signer", self.mr_signer))
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
            digest = _hex32("expected_policy_hash", self.expected_policy_hash)
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


# --- reports ------------------------------------------------------------------------------------


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerificationReport:
    """Everything a verifier found. Enclave fields come from the quote even when refused, so a
    refusal can be diagnosed; they are authenticated only when ``accepted``."""

    accepted: bool
    simulated: bool
    status: str | None
    advisory_ids: tuple[str, ...]
    mr_enclave: str | None
    mr_signer: str | None
    isv_prod_id: int | None
    isv_svn: int | None
    debug: bool | None
    report_data: str | None
    checks: tuple[Check, ...]
    error: tuple[str, str] | None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "simulated": self.simulated,
            "status": self.status,
            "advisory_ids": list(self.advisory_ids),
            "mr_enclave": self.mr_enclave,
            "mr_signer": self.mr_signer,
            "isv_prod_id": self.isv_prod_id,
            "isv_svn": self.isv_svn,
            "debug": self.debug,
            "report_data": self.report_data,
            "checks": [c._asdict() for c in self.checks],
            "error": None if self.error is None else dict(zip(("code", "message"), self.error, strict=True)),
        }

    def summary_lines(self) -> list[str]:
        def show(value: object) -> str:
            return "-" if value is None else str(value)

        lines = [f"attestation: {'ACCEPTED' if self.accepted else 'REFUSED'}"]
        if self.simulated:
            lines.append("WARNING: SIMULATED attestation - no SGX hardware protects this enclave")
        advisories = ", ".join(self.advisory_ids) or "none"
        lines += [
            f"tcb status:   {show(self.status)} (advisories: {advisories})",
            f"mr_enclave:   {show(self.mr_enclave)}",
            f"mr_signer:    {show(self.mr_signer)}",
            f"isv_prod_id:  {show(self.isv_prod_id)}   isv_svn: {show(self.isv_svn)}"
            f"   debug: {show(self.debug)}",
            f"report_data:  {show(self.report_data)}",
            "checks:",
        ]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        if self.error is not None:
            lines.append(f"error: {self.error[0]}: {self.error[1]}")
        return lines


@dataclass(frozen=True)
class VerifiedEnclave:
    """Keys of an enclave whose bundle passed every check; pin them for the session."""

    enc_pub: bytes
    sig_pub: bytes
    policy_hash: bytes
    simulated: bool
    report: VerificationReport


@dataclasses.dataclass
class _Draft:
    """Findings so far; each check appends one entry, a failing one raises."""

    simulated: bool = False
    status: str | None = None
    advisory_ids: tuple[str, ...] = ()
    fields: QuoteFields | None = None
    checks: list[Check] = dataclasses.field(default_factory=list)

    def ok(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail))

    def fail(self, name: str, error: CleanroomError) -> NoReturn:
        self.checks.append(Check(name, False, error.message))
        raise error

    def report(self, error: CleanroomError | None) -> VerificationReport:
        f = self.fields
        return VerificationReport(
            accepted=error is None,
            simulated=self.simulated,
            status=self.status,
            advisory_ids=self.advisory_ids,
            mr_enclave=None if f is None else f.mr_enclave.hex(),
            mr_signer=None if f is None else f.mr_signer.hex(),
            isv_prod_id=None if f is None else f.isv_prod_id,
            isv_svn=None if f is None else f.isv_svn,
            debug=None if f is None else f.debug,
            report_data=None if f is None else f.report_data.hex(),
            checks=tuple(self.checks),
            error=None if error is None else (error.code, error.message),
        )


# --- dcap-qvl ---------------------------------------------------------------------------------

# dcap-qvl raises ValueError("Verification failed: ...") for everything. Map its wording (a
# substring, first match wins) to our error class, the check it belongs to, and a short fixed
# message: the library's text can carry raw values and must not reach a party's screen.
_SIG, _TIME = "signature_chain", "collateral_time"
# fmt: off
_DCAP_FAILURES: tuple[tuple[str, type[AttestationError], str, str], ...] = (
    ("Debug mode is enabled", DebugEnclave, "debug", "the enclave runs in debug mode"),
    ("TCB status is invalid", TcbStatusNotAllowed, "tcb_status", "the platform TCB is revoked"),
    ("CrlExpired", CollateralExpired, _TIME, "a CRL is expired at this time"),
    ("CertExpired", CollateralExpired, _TIME, "a certificate is expired"),
    ("CertNotValidYet", CollateralExpired, _TIME, "a certificate is not yet valid"),
    ("issue date is in the future", CollateralExpired, _TIME, "collateral is not yet valid"),
    ("expired", CollateralExpired, _TIME, "collateral is expired at this time"),
    ("CertRevoked", QuoteInvalid, _SIG, "the PCK certificate is revoked"),
    ("Failed to parse root CA CRL", QuoteInvalid, _SIG,
     "the collateral is not issued under the trusted root"),
    ("Failed to load root ca", QuoteInvalid, _SIG, "the root CA is not valid DER"),
    ("ISV enclave report signature is invalid", QuoteInvalid, _SIG,
     "the enclave report signature is invalid"),
    ("QE report hash mismatch", QuoteInvalid, _SIG,
     "the attestation key is not bound to the quoting enclave"),
    ("Signature is invalid for qe_report", QuoteInvalid, _SIG,
     "the quoting enclave report signature is invalid"),
    ("Signature is invalid for tcb_info", QuoteInvalid, _SIG, "the TCB info signature is invalid"),
    ("Signature is invalid for qe_identity", QuoteInvalid, _SIG,
     "the QE identity signature is invalid"),
    ("Failed to decode quote", QuoteInvalid, _SIG, "the quote is malformed"),
    ("Fmspc mismatch", QuoteInvalid, _SIG, "the TCB info is for another platform"),
    ("No matching TCB level", QuoteInvalid, _SIG, "no TCB level matches the platform"),
    ("Failed to verify certificate chain", QuoteInvalid, _SIG,
     "the PCK certificate chain did not verify"),
)
# fmt: on


def _classify_dcap_error(text: str) -> tuple[str, AttestationError]:
    for needle, cls, check, message in _DCAP_FAILURES:
        if needle in text:
            return check, cls(message)
    return _SIG, QuoteInvalid("the quote or its collateral did not verify")


def _dcap_verify(
    draft: _Draft, quote: bytes, collateral_json: str, now: int, root_ca_der: bytes | None
) -> None:
    import dcap_qvl  # party side only; keeps `import attestation.verify` cheap elsewhere

    try:
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    except (ValueError, TypeError):
        draft.fail("signature_chain", QuoteInvalid("the collateral is malformed"))
    try:
        if root_ca_der is None:
            verified = dcap_qvl.verify(quote, collateral, now)
        else:
            verified = dcap_qvl.verify_with_root_ca(quote, collateral, root_ca_der, now)
    except ValueError as exc:
        check, error = _classify_dcap_error(str(exc))
        if check in ("tcb_status", "debug"):
            # dcap-qvl judges status and debug only after the chain and the dates held.
            draft.ok("signature_chain", "signatures and certificate chain verified")
            draft.ok("collateral_time", "collateral valid at the given time")
        draft.fail(check, error)
    draft.status = verified.status
    draft.advisory_ids = tuple(verified.advisory_ids)


# --- the checks ---------------------------------------------------------------------------------


def _is_intel_root(root_ca_der: bytes) -> bool:
    return hashlib.sha256(root_ca_der).hexdigest() == INTEL_ROOT_CA_SHA256


def _tcb_info_issue_date(collateral_json: str) -> int:
    tcb_info = json.loads(json.loads(collateral_json)["tcb_info"])
    issued = dt.datetime.strptime(tcb_info["issueDate"], "%Y-%m-%dT%H:%M:%SZ")
    return int(issued.replace(tzinfo=dt.UTC).timestamp())


def _check_measurement(draft: _Draft, fields: QuoteFields, policy: VerifierPolicy) -> None:
    enclaves, detail = policy.mr_enclaves, "MRENCLAVE in the allow-list"
    if not enclaves and policy.mr_signer is None:
        if not (draft.simulated and policy.allow_simulation):
            draft.fail(
                "measurement",
                MeasurementMismatch("no measurement configured (mr_enclaves or mr_signer)"),
            )
        enclaves, detail = (SIM_MR_ENCLAVE.hex(),), "simulation default MRENCLAVE"
    if enclaves and fields.mr_enclave.hex() not in enclaves:
        draft.fail("measurement", MeasurementMismatch("MRENCLAVE is not in the allow-list"))
    if policy.mr_signer is not None:
        if fields.mr_signer.hex() != policy.mr_signer:
            draft.fail("measurement", MeasurementMismatch("MRSIGNER is not the expected one"))
        if fields.isv_prod_id != policy.isv_prod_id:
            draft.fail("measurement", MeasurementMismatch("ISVPRODID is not the expected one"))
        if policy.min_isv_svn is not None and fields.isv_svn < policy.min_isv_svn:
            draft.fail("measurement", MeasurementMismatch("ISVSVN is below the minimum"))
        detail = "MRSIGNER, ISVPRODID and ISVSVN as required" + (
            " and MRENCLAVE in the allow-list" if policy.mr_enclaves else ""
        )
    draft.ok("measurement", detail)


def _check_quote(
    draft: _Draft,
    quote: bytes,
    collateral_json: str | None,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None,
    expected_report_data: bytes | None,
) -> None:
    try:
        draft.fields = parse_quote_fields(quote)  # for the report; dcap-qvl authenticates below
    except QuoteInvalid:
        draft.fields = None

    # A bundle may already have declared itself simulated; never downgrade that.
    draft.simulated |= root_ca_der is not None and not _is_intel_root(root_ca_der)
    if draft.simulated and not policy.allow_simulation:
        draft.fail(
            "simulation",
            SimulationNotAllowed("quote is signed by a simulation PKI; simulation not allowed"),
        )
    draft.ok("simulation", "SIMULATED, explicitly allowed" if draft.simulated else "not simulated")

    if collateral_json is None:
        draft.fail("signature_chain", QuoteInvalid("no collateral was supplied"))
    _dcap_verify(draft, quote, collateral_json, now, root_ca_der)
    fields = draft.fields
    if fields is None:  # dcap-qvl accepted a layout we do not read; refuse rather than guess
        draft.fail("signature_chain", QuoteInvalid("unsupported quote layout"))
    root = "a SIMULATION root" if draft.simulated else "the Intel root"
    draft.ok("signature_chain", f"signatures and certificate chain verified to {root}")
    draft.ok("collateral_time", "collateral valid at the given time")

    if draft.status not in policy.allowed_statuses:
        draft.fail(
            "tcb_status",
            TcbStatusNotAllowed(f"TCB status {draft.status} is not allowed by the verifier policy"),
        )
    rejected = sorted(set(draft.advisory_ids) & set(policy.rejected_advisories))
    if rejected:
        draft.fail("tcb_status", TcbStatusNotAllowed(f"advisory rejected by policy: {', '.join(rejected)}"))
    draft.ok("tcb_status", f"{draft.status} is allowed")

    if fields.debug:
        draft.fail("debug", DebugEnclave())
    draft.ok("debug", "debug attribute is off")

    _check_measurement(draft, fields, policy)

    if expected_report_data is None:
        draft.ok("report_data", "not checked: no expected value was given")
    elif not hmac.compare_digest(fields.report_data, expected_report_data):
        draft.fail("report_data", ReportDataMismatch())
    else:
        draft.ok("report_data", "matches the expected value")

    if policy.max_collateral_age is not None:
        try:
            age = now - _tcb_info_issue_date(collateral_json)
        except (ValueError, KeyError, TypeError):
            draft.fail("collateral_age", QuoteInvalid("the TCB info issue date is unreadable"))
        if age > policy.max_collateral_age:
            draft.fail("collateral_age", CollateralExpired("collateral is older than allowed"))
        draft.ok("collateral_age", f"TCB info issued {age} s before now")


def _check_now(now: object) -> None:
    # dcap-qvl takes an unsigned 64-bit time; anything else would surface as an odd exception.
    if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now < 2**63:
        raise ValueError("now must be a non-negative integer (Unix seconds)")


def _check_arguments(quote: object, now: object, expected_report_data: object) -> None:
    # Caller mistakes, not attestation outcomes: raise instead of reporting.
    if not isinstance(quote, bytes):
        raise TypeError("quote must be bytes")
    _check_now(now)
    if expected_report_data is not None and (
        not isinstance(expected_report_data, bytes) or len(expected_report_data) != 64
    ):
        raise ValueError("expected_report_data must be 64 bytes")


def _evaluate_quote(
    quote: bytes,
    collateral_json: str | None,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None,
    expected_report_data: bytes | None,
) -> tuple[VerificationReport, CleanroomError | None]:
    _check_arguments(quote, now, expected_report_data)
    draft = _Draft()
    try:
        _check_quote(
            draft,
            quote,
            collateral_json,
            now=now,
            policy=policy,
            root_ca_der=root_ca_der,
            expected_report_data=expected_report_data,
        )
    except CleanroomError as err:
        return draft.report(err), err
    return draft.report(None), None


def evaluate_quote(
    quote: bytes,
    collateral_json: str,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None = None,
    expected_report_data: bytes | None = None,
) -> VerificationReport:
    """Like ``verify_quote`` but returns a refused report instead of raising."""
    report, _ = _evaluate_quote(
        quote,
        collateral_json,
        now=now,
        policy=policy,
        root_ca_der=root_ca_der,
        expected_report_data=expected_report_data,
    )
    return report


def verify_quote(
    quote: bytes,
    collateral_json: str,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None = None,
    expected_report_data: bytes | None = None,
) -> VerificationReport:
    """Verify a raw SGX quote against collateral and a verifier policy.

    ``root_ca_der`` None means Intel's root (built into dcap-qvl). Any other root is a simulation
    PKI and is allowed only when ``policy.allow_simulation``.

    :raise AttestationError: the subclass names the first check that refused (module docstring).
    """
    report, error = _evaluate_quote(
        quote,
        collateral_json,
        now=now,
        policy=policy,
        root_ca_der=root_ca_der,
        expected_report_data=expected_report_data,
    )
    if error is not None:
        raise error
    return report


# --- attestation bundles ------------------------------------------------------------------------

_BUNDLE_KEYS = frozenset(
    {
        "format",
        "mode",
        "simulated",
        "quote",
        "collateral",
        "enc_pub",
        "sig_pub",
        "policy",
        "policy_hash",
        "nonce",
        "simulation_root_ca",
    }
)
_MODES = ("simulation", "gramine-direct", "sgx")


@dataclass(frozen=True)
class _Bundle:
    simulated: bool
    quote: bytes
    collateral: str | None
    enc_pub: bytes
    sig_pub: bytes
    policy: bytes
    nonce: bytes
    simulation_root_ca: bytes | None


def _b64(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"bundle field {name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"bundle field {name} is not base64") from None


def _parse_bundle(bundle: object) -> _Bundle:
    if not isinstance(bundle, dict):
        raise ProtocolError("attestation bundle must be a JSON object")
    unknown = sorted(set(bundle) - _BUNDLE_KEYS)
    if unknown:
        raise ProtocolError(f"unknown bundle field: {unknown[0]}")
    missing = sorted(_BUNDLE_KEYS - set(bundle))
    if missing:
        raise ProtocolError(f"missing bundle field: {missing[0]}")
    if bundle["format"] != 1 or isinstance(bundle["format"], bool):
        raise ProtocolError("unsupported attestation bundle format")
    if bundle["mode"] not in _MODES:
        raise ProtocolError("unknown attestation mode")
    simulated = bundle["simulated"]
    if not isinstance(simulated, bool) or simulated != (bundle["mode"] != "sgx"):
        raise ProtocolError("bundle mode and simulated flag disagree")
    root = bundle["simulation_root_ca"]
    if (root is not None) != simulated:
        raise ProtocolError("simulation_root_ca must be present exactly when simulated")
    collateral = bundle["collateral"]
    if collateral is not None and not isinstance(collateral, str):
        raise ProtocolError("bundle field collateral must be text or null")
    policy = _b64("policy", bundle["policy"])
    claimed_hash = bytes.fromhex(_hex32("policy_hash", bundle["policy_hash"], ProtocolError))
    if not hmac.compare_digest(claimed_hash, hashlib.sha256(policy).digest()):
        raise ProtocolError("bundle policy_hash is not the hash of its policy")
    return _Bundle(
        simulated=simulated,
        quote=_b64("quote", bundle["quote"]),
        collateral=collateral,
        enc_pub=bytes.fromhex(_hex32("enc_pub", bundle["enc_pub"], ProtocolError)),
        sig_pub=bytes.fromhex(_hex32("sig_pub", bundle["sig_pub"], ProtocolError)),
        policy=policy,
        nonce=bytes.fromhex(_hex32("nonce", bundle["nonce"], ProtocolError)),
        simulation_root_ca=None if root is None else _b64("simulation_root_ca", root),
    )


def _check_bundle(
    draft: _Draft,
    bundle: object,
    *,
    agreed_policy: bytes,
    now: int,
    policy: VerifierPolicy,
    nonce: bytes | None,
    collateral: str | None,
) -> _Bundle:
    try:
        parsed = _parse_bundle(bundle)
    except ProtocolError as err:
        draft.fail("bundle", err)
    draft.ok("bundle", "well-formed")
    draft.simulated = parsed.simulated
    if parsed.simulated and not policy.allow_simulation:
        draft.fail("simulation", SimulationNotAllowed("bundle is simulated; simulation not allowed"))

    bundle_policy_hash = hashlib.sha256(parsed.policy).digest()
    expected = compute_report_data(parsed.enc_pub, parsed.sig_pub, bundle_policy_hash, parsed.nonce)
    _check_quote(
        draft,
        parsed.quote,
        collateral if collateral is not None else parsed.collateral,
        now=now,
        policy=policy,
        root_ca_der=parsed.simulation_root_ca,
        expected_report_data=expected,
    )

    agreed_hash = hashlib.sha256(agreed_policy).digest()
    if not hmac.compare_digest(agreed_hash, bundle_policy_hash):
        draft.fail("policy_hash", PolicyMismatch())
    if policy.expected_policy_hash is not None and bundle_policy_hash.hex() != (policy.expected_policy_hash):
        draft.fail("policy_hash", PolicyMismatch("the policy is not the one the verifier pinned"))
    draft.ok("policy_hash", "the enclave runs the agreed policy")

    if nonce is None:
        draft.ok("nonce", "not checked: no fresh nonce was requested")
    elif not hmac.compare_digest(nonce, parsed.nonce):
        draft.fail("nonce", StaleNonce())
    else:
        draft.ok("nonce", "carries the requested nonce")
    return parsed


def _evaluate_bundle(
    bundle: object,
    *,
    agreed_policy: bytes,
    now: int,
    policy: VerifierPolicy,
    nonce: bytes | None,
    collateral: str | None,
) -> tuple[VerificationReport, _Bundle | None, CleanroomError | None]:
    if not isinstance(agreed_policy, bytes):
        raise TypeError("agreed_policy must be bytes")
    if nonce is not None and (not isinstance(nonce, bytes) or len(nonce) != 32):
        raise ValueError("nonce must be 32 bytes")
    _check_now(now)
    draft = _Draft()
    try:
        parsed = _check_bundle(
            draft,
            bundle,
            agreed_policy=agreed_policy,
            now=now,
            policy=policy,
            nonce=nonce,
            collateral=collateral,
        )
    except CleanroomError as err:
        return draft.report(err), None, err
    return draft.report(None), parsed, None


def evaluate_bundle(
    bundle: dict[str, Any],
    *,
    agreed_policy: bytes,
    now: int,
    policy: VerifierPolicy,
    nonce: bytes | None = None,
    collateral: str | None = None,
) -> VerificationReport:
    """Like ``verify_bundle`` but returns the (possibly refused) report instead of raising."""
    report, _, _ = _evaluate_bundle(
        bundle,
        agreed_policy=agreed_policy,
        now=now,
        policy=policy,
        nonce=nonce,
        collateral=collateral,
    )
    return report


def verify_bundle(
    bundle: dict[str, Any],
    *,
    agreed_policy: bytes,
    now: int,
    policy: VerifierPolicy,
    nonce: bytes | None = None,
    collateral: str | None = None,
) -> VerifiedEnclave:
    """Verify the host's attestation bundle and return the enclave keys to pin.

    Checks, in order: the bundle is well-formed (ProtocolError); a simulated bundle needs
    ``policy.allow_simulation`` (SimulationNotAllowed); the quote passes ``verify_quote`` with
    the REPORTDATA recomputed from enc_pub, sig_pub, SHA-256(bundle policy) and the bundle nonce
    (ReportDataMismatch); the bundle's policy is ``agreed_policy`` and, if pinned,
    ``policy.expected_policy_hash`` (PolicyMismatch); the nonce is the requested one (StaleNonce).
    Without ``nonce`` any bundle nonce is accepted (it is still bound into REPORTDATA).
    ``collateral`` replaces the bundle's collateral (e.g. fetched from Intel PCS by the caller).

    :raise CleanroomError: ProtocolError or an AttestationError subclass.
    """
    report, parsed, error = _evaluate_bundle(
        bundle,
        agreed_policy=agreed_policy,
        now=now,
        policy=policy,
        nonce=nonce,
        collateral=collateral,
    )
    if error is not None:
        raise error
    assert parsed is not None  # no error means the bundle parsed
    return VerifiedEnclave(
        enc_pub=parsed.enc_pub,
        sig_pub=parsed.sig_pub,
        policy_hash=hashlib.sha256(parsed.policy).digest(),
        simulated=parsed.simulated,
        report=report,
    )
