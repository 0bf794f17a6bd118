"""Durable ciphertext store: temp files, atomic rename, acceptance order, quarantine, results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from host.storage import ResultStore, UploadStore
from protocol.errors import ConflictError


def _ids(n: int) -> list[bytes]:
    return [bytes([i]) * 16 for i in range(1, n + 1)]


def _store_one(store: UploadStore, upload_id: bytes, payload: bytes = b"data") -> Path:
    with store.new_upload() as writer:
        writer.write_record(b"\x01", payload)
        return store.commit(writer, upload_id)


def _partials(store: UploadStore) -> list[Path]:
    return list(store.directory.glob(".*.partial"))


def test_commit_renames_exact_bytes(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    with store.new_upload() as writer:
        writer.write_record(b"header")
        writer.write_record(b"\x01", b"cipher")
        assert _partials(store) == [writer.path]
        assert not list(store.directory.glob("*.upload"))  # nothing final before commit
        path = store.commit(writer, _ids(1)[0])
    assert path == store.directory / f"{_ids(1)[0].hex()}.upload"
    assert path.read_bytes() == b"\x00\x00\x00\x06header\x00\x00\x00\x07\x01cipher"
    assert writer.size == len(path.read_bytes())
    assert _partials(store) == []


def test_failure_removes_the_temp_file(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    with pytest.raises(RuntimeError), store.new_upload() as writer:
        writer.write_record(b"partial")
        raise RuntimeError("client went away")
    assert _partials(store) == []
    assert store.accepted() == []


def test_acceptance_order_is_commit_order(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    ids = _ids(4)
    writers = [store.new_upload() for _ in ids]
    for w in writers:
        w.write_record(b"x")
    for i in (2, 0, 3, 1):  # streams finish in a different order than they started
        store.commit(writers[i], ids[i])
    assert store.accepted() == [ids[2], ids[0], ids[3], ids[1]]
    assert UploadStore(tmp_path).accepted() == [ids[2], ids[0], ids[3], ids[1]]


def test_an_accepted_upload_is_never_overwritten(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    path = _store_one(store, _ids(1)[0], b"original")
    with pytest.raises(ConflictError), store.new_upload() as writer:
        writer.write_record(b"\x01", b"replacement")
        store.commit(writer, _ids(1)[0])
    assert path.read_bytes().endswith(b"original")
    assert _partials(store) == []


def test_index_survives_a_torn_line_and_removed_files(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    a, b, c = _ids(3)
    for upload_id in (a, b, c):
        _store_one(store, upload_id)
    store.remove(b)
    with open(store.directory / "index", "a") as f:
        f.write("0123")  # a crash in the middle of an append
    assert store.accepted() == [a, c]


def test_resent_upload_takes_its_last_position(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    a, b = _ids(2)
    _store_one(store, a)
    store.remove(a)  # refused at commit
    _store_one(store, b)
    _store_one(store, a)  # sent again, accepted after b
    assert store.accepted() == [b, a]


def test_lost_index_still_lists_every_file(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    ids = _ids(3)
    for upload_id in ids:
        _store_one(store, upload_id)
    (store.directory / "index").unlink()
    assert sorted(store.accepted()) == sorted(ids)


def test_quarantine_moves_out_of_the_replay_set(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    a, b = _ids(2)
    _store_one(store, a, b"first")
    _store_one(store, b)
    target = store.quarantine(a)
    assert target is not None and target.parent == store.quarantine_dir
    assert target.read_bytes().endswith(b"first")
    assert store.accepted() == [b]
    # quarantining the same id again (re-sent, refused again) keeps both copies
    _store_one(store, a, b"second")
    second = store.quarantine(a)
    assert second is not None and second != target and target.exists()
    assert store.quarantine(a) is None


def test_stale_partials_are_removed_at_start(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    writer = store.new_upload()
    writer.write_record(b"x")
    writer._file.close()  # simulate a crash: the process never got to discard it
    writer._file = None
    assert _partials(store)
    UploadStore(tmp_path)
    assert _partials(store) == []


def test_stored_upload_reads_back(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    _store_one(store, _ids(1)[0], b"abc")
    with store.open(_ids(1)[0]) as f:
        assert f.read().endswith(b"\x01abc")


def test_results_are_written_atomically(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    query_id = bytes(range(32))
    document: dict[str, Any] = {"query_id": query_id.hex(), "results": {"a": "b64"}}
    results.put(query_id, document)
    assert results.get(query_id.hex()) == document
    assert json.loads((results.directory / f"{query_id.hex()}.json").read_text()) == document
    assert results.get("00" * 32) is None
    assert sorted(p.name for p in results.directory.iterdir()) == [f"{query_id.hex()}.json", "index"]
