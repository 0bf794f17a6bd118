"""Attestation evidence for the clean room: both ends of an SGX DCAP quote.

Modules, by where they run:

- ``report_data``  (enclave and party) the 64-byte REPORTDATA that binds keys, policy and nonce.
- ``quote_layout`` (enclave, host, party) the SGX quote v3 byte layout as one table.
- ``quote``        (enclave) Gramine's ``/dev/attestation`` quote provider.
- ``simulated``    (host, SIMULATION ONLY) a throwaway DCAP PKI that signs simulated quotes.
- ``verify``       (party) dcap-qvl verification plus this project's policy checks.

This file imports nothing on purpose: importing ``attestation`` inside the enclave must never
pull in dcap-qvl, the simulation PKI or the verifier.
"""
