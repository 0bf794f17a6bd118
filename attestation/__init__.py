"""Attestation evidence for the clean room: both ends of an SGX DCAP quote.

Modules, by where they run:

- ``report_data``  (enclave and party) the 64-byte REPORTDATA that binds keys, policy and nonce.
- ``quote_layout`` (enclave, host, party) the SGX quote v3 byte layout as one table.
- ``quote``        (enclave) Gramine's ``/dev/attestation`` quote provider.
- ``simulated``    (host, SIMULATION ONLY) a throwaway DCAP PKI that signs simulated quotes;
                   its DER and X.509 helpers are ``_sim_der`` and ``_sim_x509``.
- ``verify``       (party) the verifier's public entry point: dcap-qvl verification plus this
                   project's checks. It re-exports ``verifier_policy`` (what a party accepts),
                   ``verification_report``, ``bundle`` (the host's attestation bundle); the checks
                   are in ``quote_checks`` and dcap-qvl's messages map to refusals in ``dcap_errors``.
- ``collateral``   (party, host) DCAP collateral from a directory or a PCCS, cached to nextUpdate.
- ``_values``      (party, host) small value checks shared by the modules above.

Only the first three load in the enclave (manifests/cleanroom-enclave.manifest.template). This
file imports nothing on purpose: importing ``attestation`` inside the enclave must never pull in
dcap-qvl, the simulation PKI, the verifier or the collateral code.
"""
