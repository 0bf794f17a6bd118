"""Key for the encrypted ``/state`` mount under Gramine.

The manifest (manifests/cleanroom-enclave.manifest.template) mounts the enclave's sealed state
directory as a Gramine encrypted mount. Which key protects it depends on how the enclave runs:

* gramine-sgx: ``_sgx_mrenclave``, a sealing key the CPU derives from this exact enclave build.
  Nothing to do here; the host cannot read the files, and a different build cannot either.
* gramine-direct: there is no SGX, so there are no ``_sgx_*`` keys and Gramine refuses every
  file of the mount ("key not set") until the app writes a 16-byte key to
  ``/dev/attestation/keys/<name>``. :func:`provision_direct_mode_key` writes a FIXED, PUBLIC
  test key derived from a constant in this file.
* plain simulation (no Gramine): no ``/dev/attestation`` at all; nothing to do.

INSECURE: gramine-direct mode has no confidentiality whatsoever. The direct-mode key is printed
in this source file, so anyone holding the state directory can decrypt it, and the host can read
the enclave's memory anyway. Direct mode exists to test the manifest (trusted files, mounts,
argv, env) without SGX hardware, never to protect data.

No I/O happens at import time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = [
    "STATE_KEY_NAME_DIRECT", "STATE_KEY_NAME_SGX", "insecure_direct_mode_key", "provision_direct_mode_key",
]

#: Key name of the state mount under gramine-sgx: the MRENCLAVE-bound sealing key.
STATE_KEY_NAME_SGX = "_sgx_mrenclave"

#: Key name of the state mount under gramine-direct. The name says what it is.
STATE_KEY_NAME_DIRECT = "cleanroom_state_insecure_direct"

# Gramine's encrypted files use AES-GCM with a 128-bit key; /dev/attestation/keys/* are 16 raw bytes.
_KEY_LEN = 16

# The direct-mode key is SHA-256 of this public label, truncated. A labelled constant (rather than
# zeros) makes the key recognisable in a hex dump and impossible to mistake for a real secret.
_INSECURE_DIRECT_KEY_LABEL = b"cleanroom/state-mount/INSECURE-PUBLIC-gramine-direct-test-key/v1"


def insecure_direct_mode_key() -> bytes:
    """The fixed, public, INSECURE 16-byte key used for the state mount in gramine-direct."""
    return hashlib.sha256(_INSECURE_DIRECT_KEY_LABEL).digest()[:_KEY_LEN]


def provision_direct_mode_key(dev_dir: str | os.PathLike[str] = "/dev/attestation") -> None:
    """Set the state-mount key when running under gramine-direct; do nothing otherwise.

    Must run before the first access to the state directory. Detection follows Gramine's
    pseudo-filesystem: under gramine-direct ``dev_dir`` exists but holds only ``keys/``; under
    gramine-sgx it also holds ``attestation_type`` (even with remote attestation "none"); outside
    Gramine it does not exist.

    Args:
        dev_dir: Gramine's attestation directory (a fake one in tests).

    Raises:
        OSError: if the key cannot be written, e.g. because the manifest's mount does not use
            ``STATE_KEY_NAME_DIRECT`` (Gramine then has no such key node). Failing here is
            clearer than the EACCES Gramine would give on the first state file.
    """
    dev = Path(dev_dir)
    if not dev.is_dir():
        return  # plain simulation: not under Gramine
    if (dev / "attestation_type").exists():
        return  # gramine-sgx: the mount uses the CPU-derived _sgx_mrenclave key
    key_path = dev / "keys" / STATE_KEY_NAME_DIRECT
    # Gramine lists a key once a mount names it; reading it gives 16 bytes if set, 0 if not.
    if key_path.exists() and len(key_path.read_bytes()) == _KEY_LEN:
        return  # already set (for example by an earlier call); keep whatever is there
    key_path.write_bytes(insecure_direct_mode_key())
