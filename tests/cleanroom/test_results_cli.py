"""``cleanroom results list|get``, ``budget`` and ``match-back`` against a stand-in host.

The stand-in host attests a key pair (``enclave`` fixture) with a genuine simulated quote, serves
the results listing and results encrypted to each recipient, and a signed budget statement; it
records every path asked, so a test can show that a refusal came before any request.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from cleanroom.cli import main
from protocol.crypto import BUDGET_LABEL, RESULT_LABEL, result_hpke_info
from protocol.wire import pack_document

SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
NOW_STORED = 1_790_000_000


def _signed_result(enclave, policy, query_id, **edits):
    body = {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash, "query_id": query_id,
        "analysis": "overlap", "kind": "overlap", "requested_by": "advertiser",
        "recipients": ["advertiser", "publisher"], "params": {"group_by": ["impressions.campaign"]},
        "simulated": True, "created_at": NOW_STORED, "columns": ["campaign", "matched_users"],
        "rows": [["spring_sale", 1234], ["loyalty", 560]],
        "privacy": {"mechanism": "discrete_laplace", "epsilon_charged": "1/5",
                    "noise_scale": {"users": "20"}, "budget_remaining": {"impressions": "29/5"},
                    "suppressed_cohorts": 6, "cohorts_total": 8, "min_cohort_size": 50},
        "audit_head": {"seq": 3, "hash": bytes(32)},
    }
    body.update(edits)
    raw = pack_document("result", body)
    return pack_document("signed", {"body": raw, "signature": enclave.signing.sign(RESULT_LABEL + raw)})


LEFT_JOIN = {
    "analysis": "", "kind": "plan",
    "params": {"sql": "SELECT i.campaign, COUNT(DISTINCT person) AS converters FROM conversions c "
                      "LEFT JOIN impressions i GROUP BY i.campaign",
               "plan": {"v": 1, "datasets": ["conversions", "impressions"], "join": "left", "where": [],
                        "group_by": ["impressions.campaign"],
                        "select": [{"fn": "count_distinct", "arg": "person", "as": "converters"}]}},
    "columns": ["campaign", "converters"], "rows": [["spring_sale", 1234], [None, 3456]],
    "privacy": {"mechanism": "discrete_laplace", "epsilon_charged": "1/5", "noise_scale": {"persons": "25"},
                "column_statistics": {"converters": ["persons"]}, "budget_remaining": {"impressions": "29/5"},
                "suppressed_cohorts": 7, "cohorts_total": 9, "min_persons": 50},
}


@pytest.fixture
def room(tmp_path, enclave, policy, policy_bytes, parties, make_bundle):
    """Policy and key files, and a stand-in host holding results for both parties."""
    query_ids = [hashlib.sha256(f"request {n}".encode()).digest() for n in range(3)]
    # Two ids that share their first 8 hex digits, for the ambiguity check.
    twins = ["abcdef01" + "0" * 56, "abcdef01" + "1" * 56]
    stored = {}
    left_id = hashlib.sha256(b"a LEFT JOIN").digest()  # a SQL result whose last row has a nil key
    for qid in [*query_ids, left_id]:
        ciphertexts = {}
        for party in ("advertiser", "publisher"):
            signed = _signed_result(enclave, policy, qid, **(LEFT_JOIN if qid == left_id else {}))
            ciphertexts[party] = base64.b64encode(SUITE.encrypt(
                signed, parties[party].result_key.public_key(),
                info=result_hpke_info(policy.collaboration_id, qid, party))).decode()
        stored[qid.hex()] = {"query_id": qid.hex(), "results": ciphertexts}
    listing = [{"query_id": q, "created_at": NOW_STORED + i, "recipients": ["advertiser", "publisher"]}
               for i, q in enumerate([*stored, *twins])]
    budget = {"collaboration_id": policy.collaboration_id, "policy_hash": policy.hash, "unit": "epsilon",
              "created_at": NOW_STORED, "simulated": True, "audit_head": {"seq": 3, "hash": bytes(32)},
              "datasets": {
                  "conversions": {"total": "6", "spent": "6/5", "remaining": "24/5", "delta_spent": "0"},
                  "impressions": {"total": "6", "spent": "1/3", "remaining": "17/3", "delta_spent": "0",
                                  "shares": {"advertiser": {"total": "3", "spent": "1/3",
                                                            "remaining": "8/3"}}}}}
    asked: list[str] = []
    state = {"budget_signer": enclave.signing}

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
            asked.append(self.path)
            query = parse_qs(url.query)
            if url.path == "/v1/attestation":
                nonce = query.get("nonce", [None])[0]
                self._reply(200, make_bundle(enclave, policy_bytes,
                                             None if nonce is None else bytes.fromhex(nonce)))
            elif url.path == "/v1/results":
                who = query.get("recipient", [None])[0]
                self._reply(200, {"results": [e for e in listing if who in e["recipients"]],
                                  "more": False})
            elif url.path.startswith("/v1/results/") and url.path[12:] in stored:
                self._reply(200, stored[url.path[12:]])
            elif url.path == "/v1/budget":
                raw = pack_document("budget_status", budget)
                self._reply(200, {"status": base64.b64encode(raw).decode(), "signature": base64.b64encode(
                    state["budget_signer"].sign(BUDGET_LABEL + raw)).decode()})
            else:
                self._reply(404, {"error": {"code": "not_found", "message": "no such resource"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    keys = {p: parties[p].save(tmp_path / "keys")[0] for p in ("advertiser", "publisher")}
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}", asked=asked,
                              policy=str(policy_file), keys=keys, query_ids=query_ids, state=state,
                              tmp=tmp_path, left_id=left_id)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _online(room, party, *argv):
    return [*argv, "--host", room.url, "--policy", room.policy, "--keys", str(room.keys[party]),
            "--insecure-allow-simulation"]


def test_results_list_shows_full_ids_and_iso_times(room, capsys):
    assert main(["results", "list", "--host", room.url, "--keys", str(room.keys["publisher"])]) == 0
    out = capsys.readouterr().out
    assert all(q.hex() in out for q in room.query_ids)
    assert "2026-09-21T14:13:20Z" in out and str(NOW_STORED) not in out
    assert "/v1/results?recipient=publisher" in room.asked
    assert main(["results", "list", "--host", room.url, "--keys", str(room.keys["publisher"]),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["query_id"] == room.query_ids[0].hex()
    assert doc["results"][0]["created_at_utc"] == "2026-09-21T14:13:20Z"


def test_a_recipient_that_did_not_run_the_query_gets_it_by_prefix(room, capsys, tmp_path):
    saved = tmp_path / "r.json"
    qid = room.query_ids[1]
    argv = _online(room, "publisher", "results", "get", qid.hex()[:10], "--save", str(saved))
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert f"query {qid.hex()}" in out and "1,234" in out and "±" in out
    assert f"/v1/results/{qid.hex()}" in room.asked
    # The hint printed after saving is a command that works when followed.
    hint = err.split("check it offline with `")[1].split("`")[0]
    words = shlex.split(hint)
    assert words[:3] == ["cleanroom", "check", str(saved)] and "--insecure-allow-simulation" in words
    assert main(words[1:]) == 0
    assert "result signature: ok" in capsys.readouterr().out


def test_ambiguous_short_and_unknown_ids_are_refused_clearly(room, capsys):
    assert main(_online(room, "publisher", "results", "get", "abcdef01")) == 1
    assert "ambiguous" in capsys.readouterr().err
    asked = len(room.asked)
    assert main(_online(room, "publisher", "results", "get", "abc")) == 1
    assert "at least 8" in capsys.readouterr().err
    assert len(room.asked) == asked  # refused before the attestation round trip
    assert main(_online(room, "publisher", "results", "get", "99999999")) == 1
    assert "error [not_found]" in capsys.readouterr().err


def test_results_get_writes_csv_and_never_overwrites(room, capsys, tmp_path):
    out = tmp_path / "r.csv"
    qid = room.query_ids[0].hex()
    assert main(_online(room, "advertiser", "results", "get", qid, "--output", str(out))) == 0
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["campaign", "matched_users", "matched_users_ci95"]
    assert rows[1] == ["spring_sale", "1234", "60"]
    asked = len(room.asked)
    assert main(_online(room, "advertiser", "results", "get", qid, "--output", str(out))) == 1
    assert "File exists" in capsys.readouterr().err and len(room.asked) == asked
    assert main(_online(room, "advertiser", "results", "get", qid, "--json", "--format", "csv")) == 2


def test_budget_prints_decimals_and_shares_from_the_signed_statement(room, capsys):
    argv = ["budget", "--host", room.url, "--policy", room.policy, "--insecure-allow-simulation"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    conversions = next(line for line in out.splitlines() if line.startswith("conversions"))
    assert conversions.split() == ["conversions", "6", "1.2", "4.8", "0"]
    impressions = next(line for line in out.splitlines() if line.startswith("impressions"))
    assert impressions.split() == ["impressions", "6", "0.333334", "5.666666", "0"]  # spent up, left down
    assert "share of advertiser" in out and "2.666666" in out and "/" not in conversions
    assert "cost per query: overlap 0.2" in out
    assert main([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["datasets"]["conversions"]["remaining"] == "24/5"
    assert doc["datasets"]["conversions"]["remaining_decimal"] == "4.8"


def test_budget_refuses_a_statement_not_signed_by_the_attested_enclave(room, capsys, other_enclave):
    room.state["budget_signer"] = other_enclave.signing
    assert main(["budget", "--host", room.url, "--policy", room.policy,
                 "--insecure-allow-simulation"]) == 1
    assert "not signed by the attested enclave" in capsys.readouterr().err


def _write_customers(path):
    path.write_text("email,name,segment\n"
                    "  Alice@Example.COM ,Alice,gold\n"
                    "bob@example.com,Bob,silver\n"
                    "\n"
                    "carol@example.com,\"Carol, Jr.\",gold\n"
                    "dave@example.com,Dave,bronze\n")
    return {e: hashlib.sha256(e.encode()).digest()
            for e in ("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com")}


def test_match_back_from_an_activation_export(room, tmp_path, capsys):
    digests = _write_customers(tmp_path / "customers.csv")
    export = tmp_path / "ids.csv"
    stranger = hashlib.sha256(b"nobody@example.com").digest()
    export.write_text("id_sha256\n" + "\n".join(d.hex() for d in (digests["alice@example.com"],
                                                                   digests["carol@example.com"],
                                                                   stranger)) + "\n")
    out = tmp_path / "matched.csv"
    assert main(["match-back", str(export), "--input", str(tmp_path / "customers.csv"),
                 "--dataset", "conversions", "--policy", room.policy, "--output", str(out)]) == 0
    assert list(csv.reader(out.read_text().splitlines())) == [["email", "name", "segment"],
                                            ["  Alice@Example.COM ", "Alice", "gold"],
                                            ["carol@example.com", "Carol, Jr.", "gold"]]
    err = capsys.readouterr().err
    assert "2 of 4 rows" in err and "1 of them match no row" in err
    assert room.asked == []  # nothing was sent anywhere


def test_match_back_from_a_verified_saved_result(room, tmp_path, enclave, policy, policy_bytes,
                                                 make_bundle, capsys):
    from cleanroom.result_files import save_result
    from cleanroom.result_open import verify_signed_result

    digests = _write_customers(tmp_path / "customers.csv")
    signed = _signed_result(enclave, policy, bytes(32), analysis="activate_converters",
                            kind="cohort_activation", columns=["id_sha256"], params={"cohort": {}},
                            rows=[[digests["bob@example.com"]], [digests["dave@example.com"]]])
    saved = tmp_path / "activation.json"
    save_result(saved, verify_signed_result(signed, enclave.sig_pub, policy),
                make_bundle(enclave, policy_bytes))
    argv = ["match-back", str(saved), "--input", str(tmp_path / "customers.csv"), "--dataset",
            "conversions", "--policy", room.policy]
    assert main(argv) == 2  # a saved result is verified first: that needs the verifier flags
    capsys.readouterr()
    assert main([*argv, "--insecure-allow-simulation"]) == 0
    out = capsys.readouterr().out
    assert list(csv.reader(out.splitlines())) == [["email", "name", "segment"],
                                                 ["bob@example.com", "Bob", "silver"],
                                                 ["dave@example.com", "Dave", "bronze"]]
    other = tmp_path / "overlap.json"
    save_result(other, verify_signed_result(_signed_result(enclave, policy, bytes(32)), enclave.sig_pub,
                                            policy), make_bundle(enclave, policy_bytes))
    assert main([*argv[:1], str(other), *argv[2:], "--insecure-allow-simulation"]) == 2
    assert "not an activation" in capsys.readouterr().err


def test_match_back_reads_the_json_exports_and_refuses_other_files(room, tmp_path, capsys):
    digests = _write_customers(tmp_path / "customers.csv")
    argv = ["--input", str(tmp_path / "customers.csv"), "--dataset", "conversions", "--policy", room.policy]
    exported = {"kind": "cohort_activation", "rows": [[digests["dave@example.com"].hex()]]}
    for name, doc in (("q.json", exported), ("c.json", {"verified": True, "result": exported})):
        (tmp_path / name).write_text(json.dumps(doc))
        assert main(["match-back", str(tmp_path / name), *argv]) == 0
        assert capsys.readouterr().out.splitlines()[1] == "dave@example.com,Dave,bronze"
    (tmp_path / "other.csv").write_text("campaign,users\nloyalty,5\n")
    assert main(["match-back", str(tmp_path / "other.csv"), *argv]) == 1
    assert "id_sha256" in capsys.readouterr().err
    assert main(["match-back", str(tmp_path / "q.json"), *argv[:2], "--dataset", "nope",
                 *argv[4:]]) == 2
    assert "no dataset 'nope'" in capsys.readouterr().err


def test_match_back_reads_parquet_files_too(room, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    own = tmp_path / "customers.parquet"
    pq.write_table(pa.table({"email": ["a@example.com", " B@example.com", "c@example.com"],
                             "spend": [10, 20, 30]}), own)
    export = tmp_path / "ids.csv"
    export.write_text("id_sha256\n" + hashlib.sha256(b"b@example.com").hexdigest() + "\n")
    assert main(["match-back", str(export), "--input", str(own), "--dataset", "conversions",
                 "--policy", room.policy]) == 0
    assert capsys.readouterr().out.splitlines() == ["email,spend", " B@example.com,20"]


def test_results_get_shows_a_left_joins_nil_row(room, capsys):
    assert main(_online(room, "advertiser", "results", "get", room.left_id.hex())) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines if line.startswith(("spring_sale", "(none) "))] == [
        ["spring_sale", "1,234"], ["(none)", "3,456"]]
    assert "None" not in "\n".join(lines)
    assert main(_online(room, "advertiser", "results", "get", room.left_id.hex(), "--format", "csv")) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(",3456,")
    assert main(_online(room, "advertiser", "results", "get", room.left_id.hex(), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["rows"][-1] == [None, 3456]
