"""Party side: where the collateral for verifying the enclave's quote comes from.

By default a party verifies with the collateral the host attached to its attestation bundle. That
is safe (Intel signs collateral; the host cannot forge it), but a party may prefer not to depend
on the host for it at all:

- ``--collateral FILE``: bring your own (dcap-qvl ``QuoteCollateralV3`` JSON), e.g. fetched once
  by your security team;
- ``--pccs-url URL``: fetch it yourself from a PCCS or Intel's PCS for the quote's platform.

Either way it replaces the bundle's collateral (``evaluate_bundle(..., collateral=...)``) and is
verified exactly like it: nothing is trusted because of where it came from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attestation.verifier import collateral as _collateral

__all__ = ["add_collateral_arguments", "collateral_from_args"]


def add_collateral_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add ``--collateral FILE`` and ``--pccs-url URL`` (mutually exclusive) to ``parser``.

    ``required`` makes one of them mandatory (a bare quote has no bundle collateral to fall
    back on).
    """
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--collateral",
        type=Path,
        metavar="FILE",
        help="DCAP collateral JSON (dcap-qvl QuoteCollateralV3 layout) to verify with, instead "
        "of the host's; Intel-signed, so it is verified like any other",
    )
    group.add_argument(
        "--pccs-url",
        type=_pccs_url,
        metavar="URL",
        help="fetch the collateral for the quote's platform from this PCCS or Intel PCS "
        "(e.g. https://api.trustedservices.intel.com) instead of using the host's",
    )


def _pccs_url(value: str) -> str:
    # Collateral is signed, so plain http cannot make a bad quote pass; other schemes are typos.
    if not value.startswith(("https://", "http://")):
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL")
    return value.rstrip("/")


def collateral_from_args(args: argparse.Namespace, quote: bytes) -> str | None:
    """The collateral JSON named by the flags for ``quote``; None means "use the bundle's".

    :raise AttestationError: ``--pccs-url`` could not provide collateral for the quote.
    :raise OSError: the ``--collateral`` file cannot be read.
    """
    path = getattr(args, "collateral", None)
    if path is not None:
        # Undecodable bytes become U+FFFD rather than an error: dcap-qvl then refuses the
        # collateral, and the report says so like for any other bad collateral.
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    url = getattr(args, "pccs_url", None)
    if url is not None:
        return _collateral.fetch_from_pccs(url, quote)
    return None
