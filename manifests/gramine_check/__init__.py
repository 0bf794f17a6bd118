"""The offline checker of the enclave's Gramine manifest, one module per job.

``layout`` says where things are and which folders are the TCB; ``render`` stands in for
``gramine-manifest``'s Jinja environment; ``schema`` knows the Gramine 1.9 keys; ``profile``,
``mounts`` and ``trusted_files`` hold the clean room's own rules; ``checker`` runs them all for
one profile into a ``findings.Report``; ``tcb_size`` counts the trusted code; ``bom`` writes and
diffs the bill of materials of a measurement. The command line
is ``python -m manifests.check`` (manifests/check.py).
"""
