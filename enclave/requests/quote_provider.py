"""Enclave side: obtain an SGX quote from Gramine's ``/dev/attestation`` pseudo-files.

Gramine's interface is plain files (docs/gramine.md): write 64 bytes to
``user_report_data``, then read ``quote``. The pair is process-global and not thread-safe, so
one lock covers write-then-read. Each quote is a round trip to the quoting enclave, so quotes
are cached per REPORTDATA. Stdlib only, no network: this module is part of the TCB.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Literal

from protocol.errors import AttestationError
from protocol.report_data import REPORT_DATA_SIZE

__all__ = ["DEFAULT_DEV_DIR", "Mode", "QuoteProvider"]

Mode = Literal["sgx", "gramine-direct", "simulation"]
DEFAULT_DEV_DIR = "/dev/attestation"


class QuoteProvider:
    """Quotes for this enclave over a ``/dev/attestation`` directory.

    ``mode`` is decided once, from what the directory offers:

    - ``"sgx"``: ``attestation_type`` says ``dcap`` and a ``quote`` node exists;
    - ``"gramine-direct"``: the directory exists but offers no quote (gramine-direct, or
      gramine-sgx with ``remote_attestation = "none"``);
    - ``"simulation"``: no directory at all (plain ``python -m enclave``).

    Only ``"sgx"`` yields hardware quotes; in the other modes the host's simulation PKI signs one.
    """

    def __init__(self, dev_dir: str | Path = DEFAULT_DEV_DIR, *, cache_size: int = 16) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self._dir = Path(dev_dir)
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._mode = self._detect_mode()

    @property
    def mode(self) -> Mode:
        return self._mode

    def _detect_mode(self) -> Mode:
        if not self._dir.is_dir():
            return "simulation"
        try:
            kind = (self._dir / "attestation_type").read_bytes()
        except OSError:
            return "gramine-direct"
        if kind.strip(b"\x00\n ") == b"dcap" and (self._dir / "quote").exists():
            return "sgx"
        return "gramine-direct"

    def quote(self, report_data: bytes) -> bytes | None:
        """The quote whose REPORTDATA is ``report_data``, or None outside real SGX.

        :raise ValueError: ``report_data`` is not 64 bytes.
        :raise AttestationError: Gramine refused to produce a quote.
        """
        if not isinstance(report_data, bytes) or len(report_data) != REPORT_DATA_SIZE:
            raise ValueError("report_data must be 64 bytes")
        if self._mode != "sgx":
            return None
        with self._lock:
            cached = self._cache.get(report_data)
            if cached is not None:
                self._cache.move_to_end(report_data)
                return cached
            quote = self._read_quote(report_data)
            self._cache[report_data] = quote
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return quote

    def _read_quote(self, report_data: bytes) -> bytes:
        # Caller holds the lock: another thread's write between ours and the read would get
        # us a quote over someone else's REPORTDATA.
        try:
            with open(self._dir / "user_report_data", "wb", buffering=0) as f:
                f.write(report_data)
            with open(self._dir / "quote", "rb") as f:
                quote = f.read()
        except OSError as exc:
            raise AttestationError("could not obtain a quote from /dev/attestation") from exc
        if not quote:
            raise AttestationError("/dev/attestation returned an empty quote")
        return quote
