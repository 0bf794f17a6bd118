"""Numeric columns bucketed at declared edges: parsed exactly on the party's side, sent as codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanroom.tables import open_table, read_all
from protocol.errors import InvalidInput, PolicyInvalid
from protocol.policy import parse_policy
from tests.conftest import EXAMPLE_POLICY

BASKET = '\n[[datasets.dimensions]]\nname = "basket"\nedges = ["0", "0.1", "25", "100"]\n'


def _policy(edges: str = BASKET) -> object:
    text = EXAMPLE_POLICY.read_text().replace(
        'values = ["north", "south", "east", "west", "central"]\n',
        'values = ["north", "south", "east", "west", "central"]\n' + edges, 1)
    return parse_policy(text.encode())


def test_edges_declare_the_buckets_and_their_labels() -> None:
    dimension = _policy().dataset("impressions").dimension("basket")  # type: ignore[attr-defined]
    assert dimension.values == ("0-0.1", "0.1-25", "25-100", "100+")
    assert (dimension.edges, dimension.edge_scale) == ((0, 1, 250, 1000), 1)


@pytest.mark.parametrize("edges", ['edges = ["5", "5"]', 'edges = ["10", "2"]', "edges = []",
                                   'edges = ["1"]\nvalues = ["a"]'])
def test_bad_edges_are_refused(edges: str) -> None:
    with pytest.raises(PolicyInvalid, match="edges"):
        _policy(f'\n[[datasets.dimensions]]\nname = "basket"\n{edges}\n')


def test_numbers_go_to_their_bucket_exactly(tmp_path: Path) -> None:
    dataset = _policy().dataset("impressions")  # type: ignore[attr-defined]
    csv = tmp_path / "i.csv"
    rows = [f"a@x.com,spring_sale,18-24,north,{v}" for v in ("0", "0.09", "0.1", "24.9", "25", "1e3")]
    csv.write_text("email,campaign,age_band,region,basket\n" + "\n".join(rows) + "\n")
    assert read_all(csv, dataset)["basket"].tolist() == [0, 0, 1, 1, 2, 3]


def test_a_number_below_the_first_edge_is_refused_naming_it(tmp_path: Path) -> None:
    dataset = _policy().dataset("impressions")  # type: ignore[attr-defined]
    csv = tmp_path / "i.csv"
    csv.write_text("email,campaign,age_band,region,basket\na@x.com,spring_sale,18-24,north,-3.5\n")
    with pytest.raises(InvalidInput) as refused, open_table(csv, dataset) as table:
        list(table.blocks(100))
    assert "basket" in refused.value.message and "-3.5" in refused.value.message
    assert "below the first bucket edge" in refused.value.message
