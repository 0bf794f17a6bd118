"""Read and write the golden wire vectors (``tests/vectors/*.json``).

Every file is plain JSON, so any language can read it. Two conventions:

* a field holding bytes is a lowercase hex string;
* a *decoded* msgpack value (a document's fields, a message body) is written with its msgpack
  types kept: text is a JSON string, integers, booleans and nil are JSON numbers, booleans and
  null, arrays and maps are JSON arrays and objects, and a msgpack ``bin`` is the object
  ``{"$bytes": "<hex>"}`` (no document has a map with the key ``$bytes``).

Keys of decoded maps appear in the order the bytes hold them: sorted for canonical documents,
the writer's order for the non-canonical host <-> enclave messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "BYTES_TAG",
    "FILES",
    "HPKE_SUITE_NAME",
    "VECTOR_DIR",
    "dump",
    "from_json",
    "h",
    "load",
    "load_all",
    "to_json",
]

VECTOR_DIR = Path(__file__).resolve().parent
BYTES_TAG = "$bytes"
# Every vector file, in the order the generator builds them (later ones refer to earlier ones).
HPKE_SUITE_NAME = "RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM"
FILES = ("keys", "policy", "report_data", "requests", "upload", "result", "receipts", "audit", "frames",
         "witness", "msgpack", "attestation", "template", "http")


def h(text: str) -> bytes:
    """Bytes of a hex field (strict: lowercase, even length)."""
    if not isinstance(text, str) or text != text.lower():
        raise ValueError("a bytes field must be a lowercase hex string")
    return bytes.fromhex(text)


def to_json(value: Any) -> Any:
    """A decoded msgpack value as JSON (bytes become ``{"$bytes": hex}``)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES_TAG: bytes(value).hex()}
    if isinstance(value, dict):
        if BYTES_TAG in value:
            raise ValueError(f"a map with the key {BYTES_TAG!r} cannot be written unambiguously")
        if not all(isinstance(k, str) for k in value):
            raise ValueError("only string map keys are allowed")
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def from_json(value: Any) -> Any:
    """The inverse of ``to_json``."""
    if isinstance(value, dict):
        if BYTES_TAG in value:
            if set(value) != {BYTES_TAG}:
                raise ValueError(f"{BYTES_TAG!r} must be the only key of its object")
            return h(value[BYTES_TAG])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, float):
        raise TypeError("the vectors hold no floating-point numbers")
    return value


def dump(doc: Any) -> str:
    """The exact text of a vector file (what the generator writes, what the test compares)."""
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


def load(name: str, directory: Path = VECTOR_DIR) -> dict[str, Any]:
    doc = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{name}.json: not a JSON object")
    return doc


def load_all(directory: Path = VECTOR_DIR) -> dict[str, dict[str, Any]]:
    return {name: load(name, directory) for name in FILES}
