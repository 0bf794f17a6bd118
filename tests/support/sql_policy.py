"""A variant of the example policy for the SQL tests: conversions get dimensions and rules on them.

The example policy's conversions have one metric and no dimension, which leaves half of the
dialect untested (grouping by the metric's own dataset, filters on both sides, an ambiguous
unqualified column). The variant adds ``channel`` and ``region`` to conversions (``region`` is
also an impressions dimension, so an unqualified ``region`` is ambiguous) and lets its rule
group and filter by them. ``max_rows`` shrinks both datasets for the end-to-end suite, because
the enclave pads every query to the declared max_rows.

``sql_time_policy_text`` adds time (a timestamp ``ts`` on both datasets, windows) and a lift arm;
``e2e_policy_text`` sets the bounds and budgets the end-to-end suites need.
"""

from __future__ import annotations

import re

__all__ = ["ARMS", "CHANNELS", "TIME_MAX", "TIME_MIN", "e2e_policy_text", "sql_policy_text",
           "sql_time_policy_text"]

CHANNELS = ["web", "store", "app"]
_DIMENSIONS = f'''[[datasets.dimensions]]
name = "channel"
values = {CHANNELS!r}

[[datasets.dimensions]]
name = "region"
values = ["north", "south", "east", "west", "central"]

'''.replace("'", '"')


def sql_policy_text(example: str, *, max_rows: int | None = None) -> str:
    """The example policy's text with the variant's changes (fails loudly if the example moved)."""
    text = example
    assert text.count("[[datasets.metrics]]") == 1 and text.count("\ncount_rows = true") == 1
    text = text.replace("[[datasets.metrics]]", _DIMENSIONS + "[[datasets.metrics]]")
    rules = '\ncount_rows = true\ngroup_by = ["channel", "region"]\nfilter_by = ["channel", "region"]\n'
    text = re.sub(r"\ncount_rows = true[^\n]*\n", rules, text)
    if max_rows is not None:
        text, n = re.subn(r"\nmax_rows = [0-9_]+", f"\nmax_rows = {max_rows}", text)
        assert n == 2
    return text


TIME_MIN, TIME_MAX = "2026-09-01", "2026-12-31T23:59:59Z"
ARMS = ["control", "test"]
_TIMESTAMP = f'''[[datasets.timestamps]]
name = "ts"
min = "{TIME_MIN}"
max = "{TIME_MAX}"
resolution = "second"

'''
_ARM = f'''[[datasets.dimensions]]
name = "arm"
values = {ARMS!r}

'''.replace("'", '"')


def sql_time_policy_text(example: str, *, max_rows: int | None = None, max_window_days: int = 14) -> str:
    """``sql_policy_text`` plus a timestamp ``ts`` on both datasets (Sept-Dec 2026, grouped and
    filtered by), each rule's ``max_window_days``, and an ``arm`` dimension (control, test) on
    impressions for lift queries. Rules: impressions group by campaign, age_band, region, arm,
    ts; conversions by channel, region, ts."""
    text = sql_policy_text(example, max_rows=max_rows)
    head, impressions, conversions = text.split("\n[[datasets]]\n")
    assert impressions.count("\n[datasets.rules]") == conversions.count("\n[datasets.rules]") == 1
    impressions = impressions.replace("\n[datasets.rules]", "\n" + _ARM + _TIMESTAMP + "[datasets.rules]")
    conversions = conversions.replace("\n[datasets.rules]", "\n" + _TIMESTAMP + "[datasets.rules]")
    impressions, n = re.subn(r'\ngroup_by = \["campaign", "age_band", "region"\]',
                             '\ngroup_by = ["campaign", "age_band", "region", "arm", "ts"]', impressions)
    assert n == 1
    impressions, n = re.subn(r'\nfilter_by = \["campaign", "age_band", "region"\]',
                             '\nfilter_by = ["campaign", "age_band", "region", "arm", "ts"]', impressions)
    assert n == 1
    conversions = conversions.replace('group_by = ["channel", "region"]\nfilter_by = ["channel", "region"]\n',
                                      'group_by = ["channel", "region", "ts"]\n'
                                      'filter_by = ["channel", "region", "ts"]\n')
    assert '"ts"]' in conversions
    window = f"\nmax_window_days = {max_window_days}\n"
    parts = []
    for block in (impressions, conversions):
        rules_at = block.index("\n[datasets.rules]")
        end = block.find("\n[", rules_at + 1)  # the next table after the rule
        end = len(block) if end < 0 else end
        parts.append(block[:end].rstrip("\n") + window + block[end:])
    return "\n[[datasets]]\n".join([head, *parts])


def e2e_policy_text(text: str, *, epsilon: str, bound: int, metric_max: str = "50",
                    budget: str = "20") -> str:
    """The end-to-end suites' changes to a variant: every rule's ``epsilon``, L0 = Linf = ``bound``
    (with data of at most ``bound`` rows per person, bounding never binds), max_frequency ≤ Linf,
    the metric clamped to [0, ``metric_max``], and each dataset's total budget (20: the largest
    a policy may declare)."""
    head, *rules = text.split("\n[datasets.rules]")
    assert len(rules) == 2
    rules = [re.sub(r'\nepsilon = "[^"]*"', f'\nepsilon = "{epsilon}"', block, count=1) for block in rules]
    text = "\n[datasets.rules]".join([head, *rules])
    for key in ("max_cohorts_per_user", "max_rows_per_user", "max_frequency"):
        text, n = re.subn(rf"\n{key} = \d+", f"\n{key} = {bound}", text)
        assert n == 1, key
    text, n = re.subn(r'\nmax = "500"', f'\nmax = "{metric_max}"', text)
    assert n == 1
    text, n = re.subn(r'\n(impressions|conversions) = "6\.0"', rf'\n\1 = "{budget}"', text)
    assert n == 2
    return text
