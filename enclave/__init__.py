"""The trusted enclave application: the only code that sees plaintext rows.

Nothing runs on import. ``python -m enclave`` (``enclave/__main__.py``) is the single I/O layer;
every other module takes values and returns values.
"""
