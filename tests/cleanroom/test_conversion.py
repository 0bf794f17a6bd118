"""The vectorised block conversion gives exactly the published scalar results, value by value."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanroom.conversion import BlockConverter
from cleanroom.id_hashing import HashPool, digest_lines, digest_values
from cleanroom.identifiers import normalizer
from cleanroom.tables import parse_fixed_point
from protocol.policy import parse_policy

_FIXTURE = [HealthCheck.function_scoped_fixture]  # the policy fixture is read-only
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "normalisation.json"
# Letters, '@', the whitespace and invisible characters the rules treat specially, non-ASCII.
ALPHABET = st.sampled_from(list("aAzZ09.+-_@@ \t\n\x00\x7f\u00a0\u3000\u200b\u00e9\u00c9\u00df\uff21\uff20"
                                "\u0130\u03a3\ufb01\u212a"))


def _convert(dataset, columns, pool=None, default_country_code=None):
    pool = pool or HashPool(workers=1)
    converter = BlockConverter(dataset, default_country_code, pool)
    batch = pa.record_batch({k: pa.array(v, type=pa.string()) if not isinstance(v, pa.Array) else v
                             for k, v in columns.items()})
    return converter.start(0, batch).result()


def _scalar(kind, value, default_country_code=None):
    try:
        return hashlib.sha256(normalizer(kind, default_country_code=default_country_code)(value)
                              .encode("utf-8")).digest()
    except ValueError as exc:
        return exc.reason


def _vectorised(block, column):
    refused = {p.row: p.reason for p in block.problems if p.column == column}
    return [refused.get(i, bytes(block.columns["id"][i])) for i in range(block.rows)]


PART = st.text(ALPHABET, max_size=6)
EMAILISH = st.one_of(st.text(ALPHABET, max_size=12), st.builds(lambda a, b: f"{a}@{b}", PART, PART))
EDGES = [" a@x.org", "a b@x.org", "A@X.ORG", "a@@x", "@x", "x@", "", "\u00e9@x", "a\u200b@x",
         "a@x\x7f", "a\t@x", "\u00a0a@x\u3000", "\uff21@\uff38"]


@settings(max_examples=300, deadline=None, suppress_health_check=_FIXTURE)
@given(st.lists(EMAILISH, min_size=1, max_size=40))
def test_emails_match_the_scalar_rule(policy, values):
    values = [*EDGES, *values]
    dataset = policy.dataset("conversions")
    block = _convert(dataset, {"email": values, "value": ["1"] * len(values)})
    assert _vectorised(block, "email") == [_scalar("email", v) for v in values]


@settings(max_examples=200, deadline=None, suppress_health_check=_FIXTURE)
@given(st.lists(st.text(st.sampled_from(list("0123456789.-+e, \u00a0\u0661x")), max_size=8),
                min_size=1, max_size=30))
def test_metrics_match_parse_fixed_point(policy, values):
    dataset = policy.dataset("conversions")
    block = _convert(dataset, {"email": ["a@x.org"] * len(values), "value": values})
    refused = {p.row: p.reason for p in block.problems if p.column == "value"}
    for i, value in enumerate(values):
        try:
            expected = parse_fixed_point(value, 2)
        except ValueError as exc:
            assert refused.get(i) == str(exc), value
        else:
            assert i not in refused and block.columns["value"][i] == expected, value


@pytest.mark.parametrize("case", json.loads(VECTORS.read_text())["cases"],
                         ids=lambda c: f"{c['kind']}:{c['input'][:20]!r}")
def test_the_published_vectors_through_the_block_path(policy_bytes, case):
    policy = parse_policy(policy_bytes.replace(b'id_normalization = "email"',
                                               f'id_normalization = "{case["kind"]}"'.encode()))
    dataset = policy.dataset("conversions")
    block = _convert(dataset, {"email": [case["input"]], "value": ["1"]},
                     default_country_code=case["default_country"])
    if "refused" in case:
        assert block.problems and not block.valid[0]
    else:
        assert block.valid[0] and bytes(block.columns["id"][0]).hex() == case["sha256"]


def test_dimensions_are_trimmed_and_looked_up(policy):
    dataset = policy.dataset("impressions")
    values = [" spring_sale\u00a0", "Spring_Sale", "loyalty", ""]
    block = _convert(dataset, {"email": ["a@x.org"] * 4, "campaign": values,
                               "age_band": ["18-24"] * 4, "region": ["north"] * 4})
    campaigns = dataset.dimension("campaign").values
    assert [campaigns[c] for c in block.columns["campaign"][[0, 2]]] == ["spring_sale", "loyalty"]
    assert [(p.row, p.value) for p in block.problems] == [(1, "Spring_Sale"), (3, "")]
    assert block.valid.tolist() == [True, False, True, False]


def test_parquet_types_convert_like_their_text(policy):
    dataset = policy.dataset("conversions")
    block = _convert(dataset, {"email": ["a@x.org", "b@x.org", "c@x.org"],
                               "value": pa.array([12, -3, None], pa.int64())})
    assert block.columns["value"][:2].tolist() == [1200, -300]
    assert [(p.row, p.reason) for p in block.problems] == [(2, "value is missing")]


def test_missing_or_non_text_identifiers_are_refused(policy):
    dataset = policy.dataset("conversions")
    block = _convert(dataset, {"email": pa.array([1, 2], pa.int64()), "value": ["1", "2"]})
    assert not block.valid.any()
    assert {p.reason for p in block.problems} == {"identifier is missing or not text"}


def test_worker_processes_give_the_same_digests():
    values = [f"user{i}@example.com".encode() for i in range(40_000)]
    joined = b"".join(v + b"\n" for v in values)
    with HashPool(workers=2) as pool:
        assert pool.lines(joined, len(values)).result() == digest_lines(joined) == digest_values(values)
        phones = ["+44 20 7946 0958", "nope"] * 20_000
        digests, refused = pool.normalised("phone", None, phones).result()
    assert digests[:32] == hashlib.sha256(b"+442079460958").digest() and digests[32:64] == bytes(32)
    assert [i for i, _ in refused] == list(range(1, 40_000, 2))


def test_ids_of_refused_rows_are_zero_and_never_hashed(policy):
    dataset = policy.dataset("conversions")
    block = _convert(dataset, {"email": ["a@x.org", "nobody"], "value": ["1", "2"]})
    assert not np.any(block.columns["id"][1]) and block.valid.tolist() == [True, False]


def test_dictionary_encoded_dimensions_match_plain_text(policy):
    dataset = policy.dataset("impressions")
    values = [" spring_sale", "bogus", "loyalty", "bogus", "Loyalty "]
    base = {"email": ["a@x.org"] * 5, "age_band": ["18-24"] * 5, "region": ["north"] * 5}
    plain = _convert(dataset, {**base, "campaign": values})
    encoded = _convert(dataset, {**base, "campaign": pa.array(values).dictionary_encode()})
    assert (plain.columns["campaign"] == encoded.columns["campaign"]).all()
    assert [(p.row, p.value) for p in plain.problems] == [(p.row, p.value) for p in encoded.problems] \
        == [(1, "bogus"), (3, "bogus"), (4, "Loyalty ")]


def test_parquet_dimensions_of_any_type(tmp_path, policy_bytes):
    pq = pytest.importorskip("pyarrow.parquet")
    from cleanroom.tables import read_all

    policy = parse_policy(policy_bytes.replace(b'values = ["north", "south", "east", "west", "central"]',
                                               b'values = ["1", "2", "3"]'))
    dataset = policy.dataset("impressions")
    path = tmp_path / "imp.parquet"
    pq.write_table(pa.table({"email": ["a@x.org", "b@x.org"], "campaign": ["loyalty", "loyalty"],
                             "age_band": ["18-24", "65+"], "region": pa.array([3, 1], pa.int16())}), path)
    assert read_all(path, dataset)["region"].tolist() == [2, 0]
