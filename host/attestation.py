"""Attestation bundles: the enclave's evidence, completed with a quote and collateral by the host.

The host adds nothing a party has to believe: a real quote comes from the enclave and Intel's
quoting enclave, collateral is Intel-signed, and a simulated quote says ``simulated: true`` and
is refused by every verifier that did not opt in.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from host.supervisor import EnclaveSupervisor
from protocol.errors import AttestationError

__all__ = ["AttestationService"]

log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class AttestationService:
    """Builds attestation bundles; caches the nonce-less one per enclave incarnation.

    In simulation (the enclave returns no quote) the host signs a simulated quote over the
    enclave's REPORTDATA with the deployment's simulation PKI and says ``simulated: true``; a
    verifier accepts that only with an explicit opt-in. With a real quote the host attaches the
    configured DCAP collateral, which Intel signed, so the host cannot forge it either: the
    file ``CLEANROOM_COLLATERAL_FILE`` if set, else ``host.collateral`` (directory or PCCS, if
    ``CLEANROOM_COLLATERAL_DIR`` or ``CLEANROOM_PCCS_URL`` is set), else null.
    """

    def __init__(self, supervisor: EnclaveSupervisor, pki_dir: Path,
                 collateral_config: Mapping[str, Any], cache_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._supervisor = supervisor
        self._pki_dir = pki_dir
        self._collateral_config = collateral_config
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pki: Any = None
        self._cached: tuple[int, float, dict[str, Any]] | None = None

    def bundle(self, nonce: bytes | None) -> dict[str, Any]:
        handle = self._supervisor.handle()
        generation = handle.info.generation
        now = self._clock()
        if nonce is None:
            with self._lock:
                cached = self._cached
            if cached and cached[0] == generation and now - cached[1] < self._cache_seconds:
                return cached[2]
        reply = handle.call("attest", {} if nonce is None else {"nonce": nonce},
                            expect="attestation")
        bundle = self._build(reply.body, nonce, now)
        if nonce is None:
            with self._lock:
                self._cached = (generation, now, bundle)
        return bundle

    def _build(self, body: dict[str, Any], nonce: bytes | None, now: float) -> dict[str, Any]:
        from protocol.report_data import ZERO_NONCE, report_data

        # Not a security check (verifiers redo it); it catches a broken enclave build early.
        expected = report_data(body["enc_pub"], body["sig_pub"], body["policy_hash"],
                               body["nonce"])
        if body["report_data"] != expected or body["nonce"] != (nonce or ZERO_NONCE):
            raise AttestationError("the enclave's report data does not match its keys")
        quote = body["quote"]
        simulated = quote is None
        root_ca = None
        if simulated:
            pki = self._simulation_pki()
            quote = pki.issue_quote(body["report_data"])
            collateral = pki.collateral_json(int(now))
            root_ca = _b64(pki.root_ca_der)
        else:
            collateral = self._real_collateral(quote, int(now))
        return {
            "format": 1,
            "mode": body["mode"],
            "simulated": simulated,
            "quote": _b64(quote),
            "collateral": collateral,
            "enc_pub": body["enc_pub"].hex(),
            "sig_pub": body["sig_pub"].hex(),
            "policy": _b64(body["policy"]),
            "policy_hash": body["policy_hash"].hex(),
            "nonce": body["nonce"].hex(),
            "simulation_root_ca": root_ca,
        }

    def _simulation_pki(self) -> Any:
        with self._lock:
            if self._pki is None:
                # Imported here: only simulation deployments need it, and it is never in the TCB.
                from attestation.insecure_simulation.pki import SimulationPki

                self._pki = SimulationPki.load_or_create(self._pki_dir)
            return self._pki

    def _real_collateral(self, quote: bytes, now: int) -> str | None:
        config = self._collateral_config
        path = config.get("CLEANROOM_COLLATERAL_FILE")
        if path is not None:
            try:
                return Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                log.error("cannot read the collateral file: %s", type(exc).__name__)
                raise AttestationError("collateral is configured but unreadable") from exc
        if config.get("CLEANROOM_COLLATERAL_DIR") or config.get("CLEANROOM_PCCS_URL"):
            # Imported only when configured: fetching collateral is optional for the host.
            from host.collateral import collateral_for_quote

            return collateral_for_quote(config, quote, now)
        return None
