"""Batch layout round trips, strict decoding, and the growable column table."""

from __future__ import annotations

import numpy as np
import pytest

from enclave.engine.columns import ColumnarTable
from protocol.batch import HEADER, batch_nbytes, decode_batch, encode_batch, rows_per_batch
from protocol.errors import InvalidInput, ProtocolError

SCHEMA = [("id", "id"), ("campaign", "dimension"), ("age", "dimension"), ("value", "metric")]
SIZES = {"campaign": 50, "age": 6}


def _columns(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "id": rng.integers(0, 256, (rows, 32), dtype=np.uint8),
        "campaign": rng.integers(0, 50, rows).astype(np.uint16),
        "age": rng.integers(0, 6, rows).astype(np.uint16),
        "value": rng.integers(-(2**62), 2**62, rows),
    }


@pytest.mark.parametrize("rows", [0, 1, 3, 7, 1000])
def test_round_trip(rows: int) -> None:
    cols = _columns(rows)
    buf = encode_batch(cols, SCHEMA)
    assert len(buf) == batch_nbytes(SCHEMA, rows)
    out = decode_batch(buf, SCHEMA, SIZES)
    assert list(out) == [name for name, _ in SCHEMA]
    for name, _ in SCHEMA:
        np.testing.assert_array_equal(out[name], cols[name])
    assert out["id"].shape == (rows, 32) and out["id"].dtype == np.uint8


def test_decode_is_zero_copy_and_aligned() -> None:
    buf = bytearray(encode_batch(_columns(5), SCHEMA))
    out = decode_batch(buf, SCHEMA, SIZES)
    buf[HEADER.size] ^= 0xFF  # first id byte
    assert out["id"][0, 0] == (buf[HEADER.size])
    base = np.frombuffer(buf, dtype=np.uint8).ctypes.data
    for col in out.values():
        assert (col.ctypes.data - base) % 8 == 0


def test_padding_is_zero() -> None:
    buf = encode_batch(_columns(3), SCHEMA)
    start = HEADER.size + 3 * 32
    assert buf[start + 6 : start + 8] == b"\0\0"  # 3 uint16 codes padded to 8 bytes


def test_accepts_v32_ids() -> None:
    cols = _columns(4)
    ids = cols["id"].copy()
    cols["id"] = ids.view("V32").ravel()
    out = decode_batch(encode_batch(cols, SCHEMA), SCHEMA, SIZES)
    np.testing.assert_array_equal(out["id"], ids)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b"XRB1" + b[4:],
        lambda b: b[:8] + (99).to_bytes(4, "little") + b[12:],  # ncols
        lambda b: b[:12] + (1).to_bytes(4, "little") + b[16:],  # reserved
        lambda b: b[:4] + (11).to_bytes(4, "little") + b[8:],  # rows
        lambda b: b + b"\0",
        lambda b: b[:-1],
        lambda b: b[:10],
    ],
)
def test_malformed_layout_is_protocol_error(mutate) -> None:
    buf = encode_batch(_columns(10), SCHEMA)
    with pytest.raises(ProtocolError):
        decode_batch(mutate(buf), SCHEMA, SIZES)


def test_out_of_range_code_names_column_not_value() -> None:
    cols = _columns(10)
    cols["age"][7] = 4321
    with pytest.raises(InvalidInput) as err:
        decode_batch(encode_batch(cols, SCHEMA), SCHEMA, SIZES)
    assert "age" in err.value.message and "4321" not in err.value.message


@pytest.mark.parametrize(
    "schema",
    [
        [("campaign", "dimension"), ("id", "id")],
        [("id", "id"), ("id2", "id")],
        [("id", "id"), ("x", "text")],
        [("id", "id"), ("id", "metric")],
        [],
    ],
)
def test_bad_schema(schema) -> None:
    with pytest.raises(InvalidInput):
        decode_batch(b"", schema, SIZES)


def test_encode_rejects_bad_columns() -> None:
    cols = _columns(4)
    with pytest.raises(InvalidInput):
        encode_batch({**cols, "age": cols["age"][:3]}, SCHEMA)
    with pytest.raises(InvalidInput):
        encode_batch({**cols, "age": np.array([0, 1, 2, 70000])}, SCHEMA)
    with pytest.raises(InvalidInput):
        encode_batch({**cols, "id": cols["id"][:, :16]}, SCHEMA)


@pytest.mark.parametrize("max_bytes", [200, 1 << 20, 8 << 20, 8 * 1024 * 1024 + 5])
def test_rows_per_batch_is_tight(max_bytes: int) -> None:
    rows = rows_per_batch(SCHEMA, max_bytes)
    assert batch_nbytes(SCHEMA, rows) <= max_bytes < batch_nbytes(SCHEMA, rows + 1)
    with pytest.raises(InvalidInput):
        rows_per_batch(SCHEMA, 40)


def _batches(sizes: list[int]) -> list[dict[str, np.ndarray]]:
    return [decode_batch(encode_batch(_columns(n, seed=i), SCHEMA), SCHEMA, SIZES)
            for i, n in enumerate(sizes)]


def test_table_appends_and_grows() -> None:
    sizes = [5, 0, 17, 300, 1, 64]
    table = ColumnarTable(SCHEMA, max_rows=10_000)
    for batch in _batches(sizes):
        table.append(batch)
    assert table.rows == sum(sizes)
    assert table.capacity < 2 * sum(sizes) + 1
    for name, _ in SCHEMA:
        expected = np.concatenate([_columns(n, seed=i)[name] for i, n in enumerate(sizes)])
        np.testing.assert_array_equal(table.column(name), expected)
    np.testing.assert_array_equal(table.ids, table.column("id"))
    assert table.ids.flags.c_contiguous and table.ids.shape == (sum(sizes), 32)


def test_capacity_hint_avoids_growth() -> None:
    table = ColumnarTable(SCHEMA, capacity_hint=100, max_rows=1000)
    buffer = table.column("value").base
    for batch in _batches([40, 60]):
        table.append(batch)
    assert table.capacity == 100 and table.column("value").base is buffer
    assert table.nbytes == 100 * (32 + 2 + 2 + 8)


def test_row_limit() -> None:
    table = ColumnarTable(SCHEMA, max_rows=50)
    first, second = _batches([30, 30])
    table.append(first)
    with pytest.raises(InvalidInput):
        table.append(second)
    assert table.rows == 30  # a refused batch adds nothing
    table.append({name: col[:20] for name, col in second.items()})
    np.testing.assert_array_equal(table.column("value")[:30], first["value"])
    np.testing.assert_array_equal(table.column("value")[30:], second["value"][:20])
    with pytest.raises(InvalidInput):
        table.column("nope")


def test_append_checks_batch_shape() -> None:
    table = ColumnarTable(SCHEMA, max_rows=50)
    (batch,) = _batches([4])
    with pytest.raises(InvalidInput):
        table.append({**batch, "value": batch["value"].astype(np.int32)})
    with pytest.raises(InvalidInput):
        table.append({**batch, "age": batch["age"][:2]})
    assert table.rows == 0
