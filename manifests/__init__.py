"""Gramine manifest for the enclave, and a checker that needs no Gramine (manifests.check)."""
