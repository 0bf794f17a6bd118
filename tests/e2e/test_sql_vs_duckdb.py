"""Generated SQL through the real host and enclave, every released cell against DuckDB's exact answer.

Two parties upload seeded synthetic CSVs (with overlap, several rows per person) to a real host
on loopback (``tests/support/deployment.py``); a seeded generator writes a few dozen queries
within the rules (random GROUP BY, WHERE, aggregates, aliases and SQL styles), the party's client
compiles, signs and sends them, and each released cell is compared with DuckDB's exact answer
over the same CSV files.

Every third query is a ``FROM k LEFT JOIN o`` (either way round), grouped by o's columns or not
at all. DuckDB's reference is a LEFT JOIN too, of k's persons to o's (person, cohort) rows with
o's WHERE predicates applied to o before the join, as an ``ON`` clause would: its NULL group is
k's persons with no such o row, the enclave's last, nil-keyed row; a person in several cohorts
counts in each, as in the enclave. The reference's persons are checked against the plain
``SELECT o.g, COUNT(DISTINCT k.person) FROM k LEFT JOIN o ON k.person = o.person AND <o's
predicates> WHERE <k's predicates> GROUP BY o.g``.

Contribution bounding does not bind, by construction: every person has at most 4 rows in each
dataset, and the policy variant sets L0 = Linf = 4 (so no person is in more than L0 cohorts, nor
has more than Linf rows in a cohort or of the other dataset), and values lie inside the clamp.
So the enclave's exact answer before noise is DuckDB's answer without any bounding.

The statistical check. Each released count or sum is its true value plus one discrete Laplace
draw of the scale t the signed result states (``privacy.noise_scale``), whose standard deviation
is σ = √(2q)/(1-q), q = e^(-1/t). For every cell z = (released - exact) / σ, and:

* per cell, |z| ≤ Z_MAX = 16. A Laplace tail is P(|Z| > zσ) ≈ e^(-√2·z), so at z = 6 one cell in
  ~5,000 would fail by chance, too often for the ~1,000 cells of a run; at 16 it is 1.5e-10 per
  cell, < 1e-6 for the run (union bound). A semantic error (a cohort counted twice, row- vs
  person-level sums, a filter applied to the wrong side) moves cells by far more than 16σ;
* over all cells whose exact value is 8σ above the clamp at 0 and the release gate (each noisy
  vector once per row), the
  mean of z is 0 and the mean of z² is 1 (σ is the exact standard deviation): each within 6
  standard errors (normal approximation; the false-alarm rate is then ~2e-9 each), which
  catches small biases and a wrong noise scale that the per-cell bound cannot (with the ~500
  such cells of a run: noise 30% below the signed scale fails; noise above it is caught only
  when far above, which is the harmless direction for privacy);
* an AVG cell is the released SUM over max(1, released COUNT) of the same noisy vectors, to the
  metric's scale (the generator always selects both with AVG).

Out-of-rule queries are refused locally with the enclave's message and, sent anyway as raw plans,
refused by the enclave with the same message; neither changes the signed budget.

The query generator and DuckDB's exact answers are in ``tests/support/sql_queries.py``.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest

from attestation.verifier.verify import VerifierPolicy
from cleanroom.sql import compile_query
from cleanroom.sql.compiler import compile_plan
from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import parse_policy
from protocol.query_plan import check_plan
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.support.deployment import HostDeployment
from tests.support.sql_policy import CHANNELS, e2e_policy_text, sql_policy_text
from tests.support.sql_queries import (
    AGE_BANDS,
    CAMPAIGNS,
    REGIONS,
    duckdb_exact,
    duckdb_exact_left,
    random_spec,
    spec_sql,
)

pytestmark = pytest.mark.slow
SEED = 20261012
N_QUERIES = 36
Z_MAX = 16
FAR = 8  # cells this many σ above 0 and the gate: P(clamped or suppressed) < 1e-5, no bias to see
ROWS_PER_PERSON = 4  # = L0 = Linf of the variant: bounding never binds


def _policy_text() -> str:
    """The SQL variant, small max_rows (queries are padded to it), L0 = Linf = 4, clamp [0, 50],
    ε 0.5 per query and the largest budget a policy may declare (20: 40 such queries)."""
    return e2e_policy_text(sql_policy_text(EXAMPLE_POLICY.read_text(), max_rows=40_000), epsilon="0.5",
                           bound=ROWS_PER_PERSON)


def _write_csvs(tmp: Path, rng: random.Random) -> tuple[Path, Path]:
    """Persons 0..11999 saw impressions, 4000..15999 converted: 8,000 in both, 1-4 rows each side
    (about 30,000 rows each, under max_rows 40,000)."""
    impressions, conversions = tmp / "impressions.csv", tmp / "conversions.csv"
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region"])
        for person in range(12_000):
            age = rng.choice(AGE_BANDS)  # a person's age band is one value; campaigns and regions vary
            for _ in range(rng.randint(1, ROWS_PER_PERSON)):
                writer.writerow([f"user{person}@example.com", rng.choice(CAMPAIGNS[: 4 + person % 5]),
                                 age, rng.choice(REGIONS)])
    with conversions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value", "channel", "region"])
        for person in range(4000, 16_000):
            for _ in range(rng.randint(1, ROWS_PER_PERSON)):
                writer.writerow([f"user{person}@example.com", f"{rng.randint(0, 5000) / 100:.2f}",
                                 rng.choice(CHANNELS), rng.choice(REGIONS)])
    return impressions, conversions


# --- the suite ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, parties) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("sql-e2e")
    rng = random.Random(SEED)
    policy_bytes = bind_policy(parties, _policy_text())
    policy = parse_policy(policy_bytes)
    impressions, conversions = _write_csvs(tmp, rng)
    db = duckdb.connect()
    for name, path in (("impressions", impressions), ("conversions", conversions)):
        db.execute(f"CREATE TABLE {name} AS SELECT email AS person, * EXCLUDE (email) "
                   f"FROM read_csv('{path}', header = true, all_varchar = true)")
    db.execute("ALTER TABLE conversions ALTER value TYPE DECIMAL(10, 2)")
    with HostDeployment(tmp, policy_bytes) as host:
        client = host.client
        allow = VerifierPolicy(allow_simulation=True)
        enclave = client.verify(policy_bytes, allow)
        client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
        client.upload(enclave, parties["advertiser"], policy, "conversions", conversions)
        yield {"client": client, "enclave": enclave, "policy": policy, "db": db, "rng": rng,
               "policy_path": host.policy_path}


def _sigma(t: Fraction) -> float:
    q = math.exp(-1 / float(t))
    return math.sqrt(2 * q) / (1 - q)


def _statistic(aggregate: str, group_ds: str | None) -> str:
    return {"distinct": "persons", "count_i": "count:impressions", "count_c": "count:conversions",
            "count_star": f"count:{group_ds}", "sum": "sum:conversions.value"}[aggregate]


ALIASES = {"distinct": "users", "count_i": "imps", "count_c": "convs", "count_star": "own_rows",
           "sum": "revenue", "avg": "aov"}


def test_generated_queries_match_duckdb_within_the_signed_noise(world, parties) -> None:
    client, enclave, policy, db, rng = (world[k] for k in ("client", "enclave", "policy", "db", "rng"))
    zs: list[float] = []  # cells far from the 0 clamp and the release gate
    cells = 0
    nil_rows = 0  # released unexposed rows of grouped LEFT JOINs
    for n in range(N_QUERIES):
        spec = random_spec(rng, left=n % 3 == 2)
        sql = spec_sql(spec)
        party = ("advertiser", "publisher")[n % 2]
        query = compile_query(sql, policy, party)
        result = client.query(enclave, parties[party], policy, "", {}, plan=query.wire, sql=sql)
        assert result.columns == query.columns, sql
        assert result.body["params"] == {"plan": query.wire, "sql": sql}  # signed with the answer
        privacy = result.privacy
        scales = {name: Fraction(t) for name, t in privacy["noise_scale"].items()}
        exact = duckdb_exact_left(db, spec) if spec["kept"] else duckdb_exact(db, spec)
        assert query.plan.left_join == bool(spec["kept"]), sql
        if spec["kept"] and spec["group"]:  # the unexposed: the last row, every key nil
            assert all(v is None for v in result.rows[-1][:len(spec["group"])]), (sql, result.rows[-1])
            assert all(v is not None for row in result.rows[:-1] for v in row[:len(spec["group"])])
            nil_rows += 1
        min_persons = query.check.min_persons
        n_labels = len(spec["group"])
        released = {tuple(row[:n_labels]): dict(zip(result.columns, row, strict=True)) for row in result.rows}
        assert len(released) == len(result.rows), f"a cohort is released twice: {sql}"
        gate = Z_MAX * _sigma(scales["persons"])
        for labels, truth in exact.items():  # a cohort far above the gate is never suppressed
            if truth["persons"] >= min_persons + gate:
                assert labels in released, (sql, labels, truth)
        for labels, row in released.items():
            truth = exact.get(labels, dict.fromkeys(
                ("persons", "count:impressions", "count:conversions", "sum:conversions.value"), 0))
            persons = row["users"] if "distinct" in spec["aggregates"] else row["persons"]
            assert persons >= min_persons, (sql, labels, row)
            checks = [(a, ALIASES[a]) for a in spec["aggregates"] if a != "avg"]
            if "distinct" not in spec["aggregates"]:
                checks.append(("distinct", "persons"))
            seen: set[str] = set()  # two columns of one vector (COUNT(*), COUNT(c.value)) are one draw
            for aggregate, column in checks:
                stat = _statistic(aggregate, spec["group_ds"])
                value = row[column]
                noisy = int(Decimal(value) * 100) if stat.startswith("sum:") else value
                sigma = _sigma(scales[stat])
                z = (noisy - truth[stat]) / sigma
                cells += 1
                assert abs(z) <= Z_MAX, (sql, labels, column, value, truth[stat], sigma)
                far = truth[stat] > FAR * sigma and (
                    stat != "persons" or truth[stat] > min_persons + FAR * sigma)
                if far and stat not in seen:
                    zs.append(z)
                seen.add(stat)
            if "avg" in spec["aggregates"]:
                total, count = Decimal(row["revenue"]), max(1, row["convs"])
                rounding = Decimal("0.005") + Decimal("1e-9")
                assert abs(Decimal(row["aov"]) - total / count) <= rounding, (sql, row)
    assert cells >= 500 and len(zs) >= 300, (cells, len(zs))  # enough cells for the checks to mean much
    assert nil_rows >= 6, nil_rows  # of the 12 LEFT JOINs, the grouped ones (5 in 6)
    mean = sum(zs) / len(zs)
    mean_sq = sum(z * z for z in zs) / len(zs)
    assert abs(mean) <= 6 / math.sqrt(len(zs)), mean  # z has mean 0, variance 1
    assert abs(mean_sq - 1) <= 6 * math.sqrt(5 / len(zs)), mean_sq  # Laplace: Var(z²) = 6 - 1 = 5


OUT_OF_RULES = [
    ("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c WHERE i.campaign = 'mars'",
     "WHERE impressions.campaign"),
    ("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c GROUP BY campaign, age_band, i.region",
     "GROUP BY"),
    ("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c GROUP BY campaign, channel",
     "GROUP BY"),
    ("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c WHERE c.value = '5'",
     "WHERE conversions.value"),
]


def test_out_of_rule_queries_are_refused_at_no_cost(world, parties) -> None:
    client, enclave, policy = world["client"], world["enclave"], world["policy"]
    keys = parties["advertiser"]
    before = client.budget_status(enclave, policy)["datasets"]
    for sql, clause in OUT_OF_RULES:
        with pytest.raises(PolicyViolation) as local:
            compile_query(sql, policy, "advertiser")
        assert local.value.message.startswith(clause + ":"), local.value.message
        plan = compile_plan(sql, policy)  # sent without the local check: the enclave decides
        with pytest.raises(PolicyViolation) as remote:
            client.query(enclave, keys, policy, "", {}, plan=plan.to_wire(), sql=sql)
        assert remote.value.message == local.value.message
        with pytest.raises(PolicyViolation):
            check_plan(policy, plan, "advertiser")
    with pytest.raises(InvalidInput, match="ORDER BY"):
        compile_query("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c ORDER BY n",
                      policy, "advertiser")
    assert client.budget_status(enclave, policy)["datasets"] == before


def test_the_cli_runs_sql_and_keeps_the_json_shape(world, parties, tmp_path, capsys) -> None:
    from cleanroom.cli import main

    keys, _public = parties["advertiser"].save(tmp_path / "keys")
    sql = ("SELECT i.campaign, COUNT(DISTINCT person) AS users, SUM(c.value) AS revenue "
           "FROM impressions i JOIN conversions c WHERE i.region <> 'west' GROUP BY i.campaign")
    before = world["client"].budget_status(world["enclave"], world["policy"])["datasets"]
    common = ["--host", world["client"].base_url, "--policy", str(world["policy_path"]),
              "--keys", str(keys), "--insecure-allow-simulation"]
    assert main(["query", *common, "--sql", sql, "--explain"]) == 0  # free, and sends nothing
    assert "rules passed:" in capsys.readouterr().out
    assert world["client"].budget_status(world["enclave"], world["policy"])["datasets"] == before
    assert main(["query", *common, "--sql", sql, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["columns"] == ["campaign", "users", "revenue"]
    assert doc["rows"] and all(len(row) == 3 and row[0] in CAMPAIGNS for row in doc["rows"])
    # the signed result carries the plan it answers and the SQL text (in its params)
    assert doc["params"] == {"plan": compile_query(sql, world["policy"], "advertiser").wire, "sql": sql}
    assert world["client"].budget_status(world["enclave"], world["policy"])["datasets"] != before
