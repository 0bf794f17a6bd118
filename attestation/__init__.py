"""The untrusted side of attestation: nothing in this package ever loads in the enclave.

- ``verifier``: what a party runs before it uploads: dcap-qvl verification of the SGX DCAP quote
  plus this project's checks (measurement, REPORTDATA binding, policy hash, freshness), the
  verifier policy a party accepts, and DCAP collateral from a directory or a PCCS.
- ``insecure_simulation``: a throwaway DCAP PKI that the host uses in simulation mode to sign
  simulated quotes. It proves nothing about any hardware; a verifier accepts its quotes only
  when told to (``--insecure-allow-simulation``).

The enclave's own end (reading a quote from Gramine's ``/dev/attestation``) lives in
``enclave/requests/quote_provider.py``; REPORTDATA, which both ends compute, is
``protocol/report_data.py``. This file imports nothing, so importing ``attestation`` never pulls
in dcap-qvl or the simulation PKI.
"""
