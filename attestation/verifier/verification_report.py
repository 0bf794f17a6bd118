"""What a verifier found: the report a party reads, and the draft the checks fill in.

Party side only. Enclave fields come from the quote even when it is refused, so a refusal can be
diagnosed; they are authenticated only when ``accepted``. A report is the one answer of
``evaluate_quote`` and ``evaluate_bundle``: ``report.require()`` raises the typed error of the
first refused check, ``report.enclave()`` also returns the keys an accepted bundle binds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

from attestation.verifier.quote_layout import QuoteFields
from protocol.errors import AttestationError, CleanroomError, error_class_for_code

__all__ = ["BoundKeys", "Check", "ReportDraft", "VerificationReport", "VerifiedEnclave"]


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


class BoundKeys(NamedTuple):
    """What an accepted bundle's quote binds in REPORTDATA: the enclave keys and its policy."""

    enc_pub: bytes
    sig_pub: bytes
    policy_hash: bytes


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
    # Set only for an accepted bundle: a bare quote binds no keys, a refused bundle's are unproven.
    bound_keys: BoundKeys | None = None
    # The class of the first refusal, so ``require`` raises exactly it (else found by error code).
    refusal: type[CleanroomError] | None = dataclasses.field(default=None, repr=False, compare=False)

    def require(self) -> VerificationReport:
        """This report if accepted; otherwise raise the typed error of the first refused check.

        :raise CleanroomError: an ``AttestationError`` subclass, or ``ProtocolError`` for a
            malformed bundle, with the code and message recorded in ``error``.
        """
        if self.accepted:
            return self
        if self.error is None:
            raise AttestationError()
        code, message = self.error
        raise (self.refusal or error_class_for_code(code))(message)

    def enclave(self) -> VerifiedEnclave:
        """The keys to pin from an accepted bundle (``require`` first, so a refusal raises).

        :raise TypeError: the report is of a bare quote (``evaluate_quote``): no keys are bound.
        """
        self.require()
        if self.bound_keys is None:
            raise TypeError("a bare quote binds no enclave keys: evaluate the attestation bundle")
        enc_pub, sig_pub, policy_hash = self.bound_keys
        return VerifiedEnclave(enc_pub=enc_pub, sig_pub=sig_pub, policy_hash=policy_hash,
                               simulated=self.simulated, report=self)

    def refused_by(self, name: str, error: CleanroomError) -> VerificationReport:
        """This report refused by a caller's own check made after the verifier's.

        For checks only the caller can make (a party remembers the enclave key it used before).
        The check is appended as failed and becomes the report's error; a report that is
        already refused keeps its first refusal and is returned unchanged.
        """
        if not self.accepted:
            return self
        return dataclasses.replace(
            self,
            accepted=False,
            checks=(*self.checks, Check(name, False, error.message)),
            error=(error.code, error.message),
            bound_keys=None,
            refusal=type(error),
        )

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
class ReportDraft:
    """Findings so far; each check appends one entry, a failing one raises.

    Internal to the verifier modules (``quote_checks``, ``bundle``): callers get the frozen
    ``VerificationReport`` from ``report()``.
    """

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

    def report(self, error: CleanroomError | None,
               bound_keys: BoundKeys | None = None) -> VerificationReport:
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
            bound_keys=bound_keys if error is None else None,
            refusal=None if error is None else type(error),
        )
