"""PartyKeys: generation, key files (permissions, no overwrite), loading."""

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleanroom.keys import PartyKeys, load_public
from protocol.errors import InvalidInput


def test_save_then_load_round_trips(tmp_path):
    keys = PartyKeys.generate("publisher")
    private_path, public_path = keys.save(tmp_path)
    assert private_path.name == "publisher.key.json" and public_path.name == "publisher.pub.json"
    loaded = PartyKeys.load(private_path)
    assert loaded.party_id == "publisher"
    assert loaded.public_hex() == keys.public_hex()
    signature = loaded.sign(b"label\x00", b"message")
    Ed25519PublicKey.from_public_bytes(keys.signing_public).verify(signature, b"label\x00message")


def test_private_file_is_owner_only_and_public_file_holds_only_public_keys(tmp_path):
    keys = PartyKeys.generate("advertiser")
    private_path, public_path = keys.save(tmp_path)
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    public_doc = json.loads(public_path.read_text())
    assert public_doc == {"format": 1, "party": "advertiser", **keys.public_hex()}
    public = load_public(public_path)
    assert (public.signing_key, public.result_key) == (keys.signing_public, keys.result_public)


def test_save_refuses_to_overwrite_either_file(tmp_path):
    first = PartyKeys.generate("publisher")
    private_path, public_path = first.save(tmp_path)
    before = private_path.read_bytes(), public_path.read_bytes()
    with pytest.raises(FileExistsError):
        PartyKeys.generate("publisher").save(tmp_path)
    assert (private_path.read_bytes(), public_path.read_bytes()) == before
    private_path.unlink()  # a lone public file still blocks a new key pair
    with pytest.raises(FileExistsError):
        PartyKeys.generate("publisher").save(tmp_path)
    assert not private_path.exists()


def test_load_refuses_a_private_file_others_can_read(tmp_path):
    private_path, _ = PartyKeys.generate("publisher").save(tmp_path)
    os.chmod(private_path, 0o644)
    with pytest.raises(InvalidInput, match="chmod 600"):
        PartyKeys.load(private_path)


def test_load_rejects_a_damaged_file(tmp_path):
    private_path, _ = PartyKeys.generate("publisher").save(tmp_path)
    doc = json.loads(private_path.read_text())
    doc["public"]["signing_key"] = "00" * 32
    private_path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="do not match"):
        PartyKeys.load(private_path)
    private_path.write_text("not json")
    with pytest.raises(InvalidInput, match="not a JSON key file"):
        PartyKeys.load(private_path)


@pytest.mark.parametrize("party", ["", "Publisher", "has space", "../etc", "x" * 64])
def test_party_ids_follow_the_policy_name_rule(party):
    with pytest.raises(InvalidInput):
        PartyKeys.generate(party)
