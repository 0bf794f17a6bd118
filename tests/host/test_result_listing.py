"""The results listing: ResultStore's index (order, paging, recipients, torn lines, old state)
and GET /v1/results over the app."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from flask.testing import FlaskClient

from host.storage import ResultStore
from protocol.errors import NotFound

SIG = base64.b64encode(bytes(64)).decode()


def _qid(n: int) -> bytes:
    return hashlib.sha256(bytes([n])).digest()


def _put(store: ResultStore, n: int, *recipients: str) -> str:
    store.put(_qid(n), {"query_id": _qid(n).hex(), "results": {r: "b64" for r in recipients}})
    return _qid(n).hex()


def test_listing_is_in_storage_order_with_host_times_and_recipients(tmp_path: Path) -> None:
    times = iter([1_790_000_000, 1_790_000_500, 1_790_001_000])
    store = ResultStore(tmp_path, clock=lambda: next(times))
    a = _put(store, 3, "publisher", "advertiser")
    b = _put(store, 1, "advertiser")
    c = _put(store, 2, "publisher")
    entries, more = store.page()
    assert [e["query_id"] for e in entries] == [a, b, c] and not more
    assert entries[0] == {"query_id": a, "created_at": 1_790_000_000,
                          "recipients": ["advertiser", "publisher"]}
    assert [e["query_id"] for e in store.page(recipient="publisher")[0]] == [a, c]
    assert store.page(recipient="nobody") == ([], False)


def test_listing_pages_with_after_and_limit(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    ids = [_put(store, n, "advertiser") for n in range(5)]
    first, more = store.page(limit=2)
    assert [e["query_id"] for e in first] == ids[:2] and more
    second, more = store.page(after=ids[1], limit=2)
    assert [e["query_id"] for e in second] == ids[2:4] and more
    last, more = store.page(after=ids[3], limit=2)
    assert [e["query_id"] for e in last] == ids[4:] and not more
    try:
        store.page(after="ab" * 32)
    except NotFound:
        pass
    else:
        raise AssertionError("an unknown after must be refused")


def test_a_torn_or_foreign_index_line_is_not_an_entry(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    a = _put(store, 1, "advertiser")
    with (store.directory / "index").open("a") as index:
        index.write('{"query_id": "not hex", "created_at": 1, "recipients": []}\n')
        index.write('{"query_id": "' + a + '", "created_at": 5, "recipients": ["x"]}\n')  # again
        index.write('{"query_id": "' + "cd" * 32)  # torn: no newline
    entries, _ = store.page()
    assert [e["query_id"] for e in entries] == [a] and entries[0]["recipients"] == ["advertiser"]


def test_results_stored_before_the_index_are_listed_at_start(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    old, older = _qid(7).hex(), _qid(8).hex()
    for qid, when in ((old, 1_700_000_100), (older, 1_700_000_000)):
        path = store.directory / f"{qid}.json"
        path.write_text(json.dumps({"query_id": qid, "results": {"publisher": "b64"}}))
        os.utime(path, (when, when))
    (store.directory / "garbage.json").write_text("{}")
    reopened = ResultStore(tmp_path)
    entries, _ = reopened.page()
    assert [e["query_id"] for e in entries] == [older, old]  # file-time order
    assert entries[0] == {"query_id": older, "created_at": 1_700_000_000, "recipients": ["publisher"]}
    assert len(ResultStore(tmp_path).page()[0]) == 2  # indexed once, not at every start


def test_get_v1_results_lists_pages_and_filters(client: FlaskClient) -> None:
    ids = []
    for n in range(3):
        request = base64.b64encode(f"query {n}".encode()).decode()
        reply = client.post("/v1/queries", json={"request": request, "signature": SIG})
        assert reply.status_code == 200
        ids.append(reply.get_json()["query_id"])
    listing = client.get("/v1/results?recipient=advertiser&limit=2")
    assert listing.status_code == 200
    body = listing.get_json()
    assert [e["query_id"] for e in body["results"]] == ids[:2] and body["more"] is True
    assert set(body["results"][0]) == {"query_id", "created_at", "recipients"}
    assert body["results"][0]["recipients"] == ["advertiser"]
    rest = client.get(f"/v1/results?recipient=advertiser&after={ids[1]}").get_json()
    assert [e["query_id"] for e in rest["results"]] == ids[2:] and rest["more"] is False
    assert client.get("/v1/results?recipient=publisher").get_json() == {"results": [], "more": False}


def test_get_v1_results_checks_its_parameters(client: FlaskClient) -> None:
    for query in ("recipient=Bad%20Name", "after=" + "AB" * 32, "after=12", "limit=0",
                  "limit=1001", "limit=x", "recipient=a%0A"):
        reply = client.get(f"/v1/results?{query}")
        assert reply.status_code == 400, query
        assert reply.get_json()["error"]["code"] == "bad_message"
    unknown = client.get("/v1/results?after=" + "ab" * 32)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
