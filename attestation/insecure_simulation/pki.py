"""SIMULATION ONLY: a throwaway DCAP PKI that signs SGX quotes with no SGX hardware behind them.

Runs on the HOST in simulation and gramine-direct modes (docs/design.md). It must never be loaded
in the enclave and stays out of ``sgx.trusted_files``: whoever holds these keys can forge any
"enclave". It mirrors Intel's PKI (docs/verifying.md) so that a simulated quote is a byte-exact
SGX quote v3 checked by the same ``dcap_qvl.verify_with_root_ca`` code as a real one:

    root CA ── PCK (Processor) CA ── PCK leaf (SGX extension 1.2.840.113741.1.13.1)
            └─ TCB signer (signs TCB info v3 and QE identity v2)
    root CRL (by the root), PCK CRL (by the PCK CA)

Only the trust anchor differs, and a verifier accepts it only with an explicit opt-in.
``SimulationPki`` ties the parts together: the certificate hierarchy and its files
(``hierarchy``), quote assembly (``quote``), collateral (``collateral``), the simulated
platform's values (``platform_values``); certificate, CRL and signature helpers live in
``x509``, the hand-written SGX extension DER in ``der``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from attestation.insecure_simulation import collateral, hierarchy
from attestation.insecure_simulation.platform_values import SIM_MR_ENCLAVE, SIM_MR_SIGNER, TCB_STATUSES
from attestation.insecure_simulation.quote import assemble_quote
from attestation.insecure_simulation.x509 import pem

__all__ = ["SIM_MR_ENCLAVE", "SIM_MR_SIGNER", "TCB_STATUSES", "SimulationPki"]


class SimulationPki:
    """Keys and certificates of one deployment's simulation PKI, plus what it signs.

    ``tcb_status``, ``advisory_ids`` and ``revoke_pck`` choose what the collateral says about the
    simulated platform, so tests can exercise OutOfDate, revoked and other refusals.
    """

    def __init__(
        self,
        keys: hierarchy.Keys,
        certs: hierarchy.Certs,
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
        keys, certs = hierarchy.issue_hierarchy()
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
        settings = {
            "format": 1,
            "warning": "SIMULATION ONLY: these keys can forge any enclave. Never trust them.",
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "revoke_pck": self.revoke_pck,
        }
        hierarchy.write_hierarchy(self.directory, self._keys, self._certs, settings)

    @classmethod
    def load(cls, directory: str | Path) -> SimulationPki:
        """Read a PKI written by ``create``."""
        directory = Path(directory)
        keys, certs, settings = hierarchy.read_hierarchy(directory)
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
        if (Path(directory) / hierarchy.SETTINGS_FILE).exists():
            return cls.load(directory)
        return cls.create(directory)

    @property
    def root_ca_der(self) -> bytes:
        """The simulation trust anchor, for ``dcap_qvl.verify_with_root_ca``."""
        return self._certs["root-ca"].public_bytes(serialization.Encoding.DER)

    # what it signs

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
        chain = "".join(pem(self._certs[p]) for p in ("pck", "pck-ca", "root-ca")).encode()
        return assemble_quote(
            report_data,
            pck_key=self._keys["pck"],
            pck_chain_pem=chain,
            mr_enclave=mr_enclave,
            mr_signer=mr_signer,
            isv_prod_id=isv_prod_id,
            isv_svn=isv_svn,
            debug=debug,
        )

    def collateral_json(self, now: int) -> str:
        """Collateral in dcap-qvl's ``QuoteCollateralV3`` JSON layout, valid now-1h..now+30d."""
        return collateral.collateral_json(
            self._keys,
            self._certs,
            now,
            tcb_status=self.tcb_status,
            advisory_ids=self.advisory_ids,
            revoke_pck=self.revoke_pck,
        )
