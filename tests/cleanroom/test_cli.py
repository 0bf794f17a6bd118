"""The ``cleanroom`` command line: help texts, exit codes, keygen, policy tools, offline check."""

import hashlib
import json

import pytest

from attestation.insecure_simulation.pki import SIM_MR_ENCLAVE
from cleanroom.cli import main
from cleanroom.keys import PartyKeys
from cleanroom.result_files import save_result
from cleanroom.result_open import verify_signed_result
from protocol.crypto import RESULT_LABEL
from protocol.policy import parse_policy
from protocol.wire import pack_document

ROOT_POLICY = "policies/advertiser-publisher.toml"

HELP = {
    ("keygen",): "key pair",
    ("policy",): "policy files",
    ("policy", "hash"): "SHA-256",
    ("policy", "bind-keys"): "public keys into a policy",
    ("verify",): "attestation",
    ("upload",): "upload one of your datasets",
    ("uploads",): "uploads the enclave has accepted",
    ("query",): "Run an analysis",
    ("check",): "saved signed result offline",
    ("results",): "results sent to you",
    ("results", "list"): "host stores for you",
    ("results", "get"): "Fetch, verify and print",
    ("match-back",): "released identifiers back to your own rows",
    ("budget",): "remaining privacy budget",
}


@pytest.mark.parametrize(("command", "purpose"), HELP.items(), ids=[" ".join(c) for c in HELP])
def test_help_for_every_command(command, purpose, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert purpose in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("keygen", "policy", "verify", "upload", "uploads", "query", "check"):
        assert command in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["query", "--host", "http://x"])
    assert exit_info.value.code == 2


def test_verify_without_a_verifier_policy_is_a_usage_error(example_policy, capsys):
    assert main(["verify", "--host", "http://127.0.0.1:9", "--policy", str(example_policy)]) == 2
    assert "--verifier-policy FILE is required" in capsys.readouterr().err


def test_unreachable_host_is_a_clean_error(example_policy, capsys):
    code = main(["verify", "--host", "http://127.0.0.1:9", "--policy", str(example_policy),
                 "--insecure-allow-simulation"])
    err = capsys.readouterr().err
    assert code == 1
    assert "WARNING: --insecure-allow-simulation" in err
    assert "error [enclave_unavailable]:" in err and "Traceback" not in err


def test_keygen_writes_files_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["keygen", "--party", "publisher", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "publisher.key.json").exists() and (tmp_path / "publisher.pub.json").exists()
    assert main(["keygen", "--party", "publisher", "--out", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["keygen", "--party", "Bad Name", "--out", str(tmp_path)]) == 1
    assert "error [invalid_input]" in capsys.readouterr().err


def test_policy_hash(example_policy, capsys):
    assert main(["policy", "hash", str(example_policy)]) == 0
    assert capsys.readouterr().out.startswith(hashlib.sha256(example_policy.read_bytes()).hexdigest())


def test_invalid_policy_is_reported(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\nsurprise = true\n")
    assert main(["policy", "hash", str(bad)]) == 1
    assert "error [policy_invalid]" in capsys.readouterr().err


@pytest.fixture
def example_policy(tmp_path):
    from pathlib import Path

    path = tmp_path / "example.toml"
    path.write_bytes((Path(__file__).resolve().parents[2] / ROOT_POLICY).read_bytes())
    return path


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_bind_keys_rewrites_only_the_key_values(tmp_path, example_policy, newline, capsys):
    original = example_policy.read_bytes().replace(b"\n", newline)
    example_policy.write_bytes(original)
    keys_dir = tmp_path / "keys"
    keys = {p: PartyKeys.generate(p) for p in ("publisher", "advertiser", "stranger")}
    for k in keys.values():
        k.save(keys_dir)
    out = tmp_path / "bound.toml"
    assert main(["policy", "bind-keys", str(example_policy), "--keys", str(keys_dir),
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    new = out.read_bytes()
    assert hashlib.sha256(new).hexdigest() in printed and "stranger" in printed
    policy = parse_policy(new)
    for party_id in ("publisher", "advertiser"):
        party = policy.party(party_id)
        assert party.signing_key == keys[party_id].signing_public
        assert party.result_key == keys[party_id].result_public
    # Undo exactly the four key substitutions: every other byte must be the original's.
    old_policy = parse_policy(original)
    restored = new
    for party_id in ("publisher", "advertiser"):
        old, fresh = old_policy.party(party_id), policy.party(party_id)
        restored = restored.replace(fresh.signing_key.hex().encode(), old.signing_key.hex().encode())
        restored = restored.replace(fresh.result_key.hex().encode(), old.result_key.hex().encode())
    assert restored == original


def test_bind_keys_with_no_matching_party(tmp_path, example_policy, capsys):
    PartyKeys.generate("stranger").save(tmp_path / "keys")
    assert main(["policy", "bind-keys", str(example_policy), "--keys", str(tmp_path / "keys"),
                 "-o", str(tmp_path / "out.toml")]) == 1
    assert "none of the key files" in capsys.readouterr().err


def test_check_a_saved_result_offline(tmp_path, policy, policy_bytes, enclave, make_bundle, now,
                                      capsys):
    body = pack_document("result", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "query_id": bytes(32), "analysis": "overlap", "kind": "overlap",
        "requested_by": "publisher", "recipients": ["publisher"], "params": {"group_by": []},
        "simulated": True, "created_at": now, "columns": ["matched_users"], "rows": [[4321]],
        "privacy": {"mechanism": "discrete_laplace", "epsilon_charged": "1/5"},
        "audit_head": {"seq": 1, "hash": bytes(32)},
    })
    signed = pack_document("signed", {"body": body, "signature": enclave.signing.sign(RESULT_LABEL + body)})
    saved = tmp_path / "result.json"
    save_result(saved, verify_signed_result(signed, enclave.sig_pub, policy),
                make_bundle(enclave, policy_bytes))
    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    argv = ["check", str(saved), "--policy", str(policy_file), "--now", str(now)]
    assert main(argv) == 2  # no verifier policy and no opt-in: nothing to verify against
    verifier_file = tmp_path / "verifier.toml"
    verifier_file.write_text(f'mr_enclaves = ["{SIM_MR_ENCLAVE.hex()}"]\n')
    assert main([*argv, "--verifier-policy", str(verifier_file)]) == 1
    assert "error [simulation_not_allowed]" in capsys.readouterr().err
    assert main([*argv, "--insecure-allow-simulation"]) == 0
    out = capsys.readouterr().out
    assert "result signature: ok" in out and "4,321" in out and "simulated: true" in out
    assert main([*argv, "--insecure-allow-simulation", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["rows"] == [[4321]]


def test_malformed_host_url_is_a_clean_error(example_policy, capsys):
    code = main(["verify", "--host", "http://[::1", "--policy", str(example_policy),
                 "--insecure-allow-simulation"])
    err = capsys.readouterr().err
    assert code == 1 and "error [invalid_input]" in err and "Traceback" not in err


def test_cohort_cannot_be_combined_with_group_by(example_policy, tmp_path, capsys):
    keys = PartyKeys.generate("advertiser")
    key_file, _ = keys.save(tmp_path)
    code = main(["query", "--host", "http://127.0.0.1:9", "--policy", str(example_policy),
                 "--keys", str(key_file), "activate_converters", "--insecure-allow-simulation",
                 "--cohort", "impressions.campaign=spring_sale", "--group-by", "impressions.region"])
    assert code == 2 and "--cohort" in capsys.readouterr().err


# --- the remembered enclave key: one check for every command that trusts an enclave ---------


@pytest.fixture
def attesting_host(enclave, policy_bytes, make_bundle):
    """A stand-in host that attests ``enclave`` for the nonce asked and records anything sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace
    from urllib.parse import parse_qs, urlsplit

    posted = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status, doc):
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path != "/v1/attestation":
                self._reply(404, {"error": {"code": "not_found", "message": "no such resource"}})
                return
            nonce = parse_qs(url.query).get("nonce", [None])[0]
            self._reply(200, make_bundle(enclave, policy_bytes,
                                         None if nonce is None else bytes.fromhex(nonce)))

        def do_POST(self):
            posted.append(self.path)
            self._reply(500, {"error": {"code": "internal", "message": "nothing may be sent"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}", posted=posted)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _remember(policy, sig_pub):
    """This party saw ``sig_pub`` before for the collaboration (what a receipt leaves behind)."""
    import os
    from pathlib import Path

    from cleanroom.audit import AuditHead, HeadStore

    HeadStore(Path(os.environ["CLEANROOM_HOME"]) / "heads").observe(
        policy.collaboration_id, sig_pub, AuditHead(1, bytes(32)))


def test_verify_refuses_a_changed_enclave_signing_key(attesting_host, policy, policy_bytes, enclave,
                                                      other_enclave, tmp_path, monkeypatch, capsys):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    argv = ["verify", "--host", attesting_host.url, "--policy", str(policy_file),
            "--insecure-allow-simulation"]
    _remember(policy, enclave.sig_pub)
    assert main(argv) == 0  # the enclave this party used before
    assert "attestation: ACCEPTED" in capsys.readouterr().out

    # Another party state: this party remembers another key than the one the host attests now.
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path / "home"))
    _remember(policy, other_enclave.sig_pub)
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "attestation: REFUSED" in out and "[FAIL] same_enclave: the enclave's signing key changed" in out
    assert "error [rollback_detected]" in err and "Traceback" not in err
    assert main([*argv, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["accepted"] is False and doc["error"]["code"] == "rollback_detected"
    assert doc["checks"][-1]["name"] == "same_enclave"


@pytest.mark.parametrize("command", ["verify", "upload", "query", "delete"])
def test_every_online_command_refuses_a_changed_key_before_sending(command, attesting_host, policy,
                                                                   policy_bytes, parties,
                                                                   other_enclave, tmp_path, capsys):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    key_file, _ = parties["advertiser"].save(tmp_path / "keys")
    (tmp_path / "c.csv").write_text("email,value\na@example.org,1\n")  # the input file exists
    extra = {"verify": [],
             "upload": ["--keys", str(key_file), "--dataset", "conversions", str(tmp_path / "c.csv")],
             "query": ["--keys", str(key_file), "overlap"],
             "delete": ["--keys", str(key_file), "conversions"]}[command]
    _remember(policy, other_enclave.sig_pub)
    assert main([command, "--host", attesting_host.url, "--policy", str(policy_file),
                 "--insecure-allow-simulation", *extra]) == 1
    assert "error [rollback_detected]" in capsys.readouterr().err
    assert attesting_host.posted == []  # refused before anything was sent


def test_offline_commands_refuse_a_changed_key(tmp_path, policy, policy_bytes, enclave, other_enclave,
                                               make_bundle, now, capsys):
    from cleanroom.audit_files import save_audit_download

    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    bundle = make_bundle(enclave, policy_bytes)
    save_audit_download(tmp_path / "audit.json", [], bundle)
    body = pack_document("result", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "query_id": bytes(32), "analysis": "overlap", "kind": "overlap",
        "requested_by": "publisher", "recipients": ["publisher"], "params": {"group_by": []},
        "simulated": True, "created_at": now, "columns": ["matched_users"], "rows": [[1]],
        "privacy": {}, "audit_head": {"seq": 1, "hash": bytes(32)},
    })
    signed = pack_document("signed", {"body": body, "signature": enclave.signing.sign(RESULT_LABEL + body)})
    save_result(tmp_path / "result.json", verify_signed_result(signed, enclave.sig_pub, policy), bundle)
    _remember(policy, other_enclave.sig_pub)
    for argv in (["check", str(tmp_path / "result.json")], ["audit", "verify", str(tmp_path / "audit.json")]):
        assert main([*argv, "--policy", str(policy_file), "--now", str(now),
                     "--insecure-allow-simulation"]) == 1
        assert "error [rollback_detected]" in capsys.readouterr().err
