"""Snapshots as changes: which score rows a run reports anew, and which it stops reporting.

Storing every run's whole `kpi_scores` grows as history × runs. Storing a version of a row
only when it first appears or changes (any score column: value, interval, status, flags,
...) grows with the changes, and still answers "what did run R report" exactly: the
versions with `valid_from_run <= R < valid_to_run` (an open version's `valid_to_run` is
null). Pure functions over DataFrames; the warehouse side is `warehouse/snapshots.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpi_pipeline.metrics.score_tables import KPI_SCORES

SCORE_KEYS = list(KPI_SCORES.keys)
SCORE_COLUMNS = KPI_SCORES.column_names
VALID_FROM = "valid_from_run"
VALID_TO = "valid_to_run"


@dataclass(frozen=True)
class ScoreChanges:
    # Rows of the current scores to store as new versions (new keys, or changed rows).
    opened: pd.DataFrame
    # Rows of the previous versions no longer reported (gone, or replaced by an opened row),
    # with whatever extra columns `previous` had (its version ids).
    closed: pd.DataFrame


def score_changes(previous: pd.DataFrame, current: pd.DataFrame) -> ScoreChanges:
    """What changed from the `previous` open versions to the `current` scores.

    Rows match on the `kpi_scores` keys; a matched row is unchanged when every score column
    is equal, a null equal to a null. Columns compare by their declared type, so a date read
    as text and one read as a timestamp compare alike. Keys must be unique on each side.
    """
    before = canonical_scores(previous)
    after = canonical_scores(current)
    # Match on the keys alone, then compare the other columns pair by pair (cheaper than
    # carrying every column through the merge).
    pairs = (
        after[SCORE_KEYS]
        .assign(_after=range(len(after)))
        .merge(
            before[SCORE_KEYS].assign(_before=range(len(before))),
            on=SCORE_KEYS,
            how="outer",
            indicator=True,
            validate="1:1",
        )
    )
    matched = pairs[pairs["_merge"] == "both"]
    now_at = matched["_after"].to_numpy(dtype="int64")
    was_at = matched["_before"].to_numpy(dtype="int64")
    same = np.ones(len(matched), dtype=bool)
    for column in SCORE_COLUMNS:
        if column in SCORE_KEYS:
            continue
        now = after[column].take(now_at).reset_index(drop=True)
        was = before[column].take(was_at).reset_index(drop=True)
        equal = (now == was).fillna(False).to_numpy(dtype=bool)
        same &= equal | (now.isna() & was.isna()).to_numpy(dtype=bool)
    changed = matched[~same]
    opened_at = [*pairs.loc[pairs["_merge"] == "left_only", "_after"], *changed["_after"]]
    closed_at = [*pairs.loc[pairs["_merge"] == "right_only", "_before"], *changed["_before"]]
    return ScoreChanges(
        opened=current.iloc[sorted(int(i) for i in opened_at)],
        closed=previous.iloc[sorted(int(i) for i in closed_at)],
    )


def canonical_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The score columns with one dtype per declared type (dates as datetime64, numbers as
    float64, booleans and text as nullable), so equal values compare equal."""
    columns = {}
    for name, kind in KPI_SCORES.columns:
        column = scores[name] if name in scores else pd.Series([None] * len(scores))
        column = column.reset_index(drop=True)
        if kind in ("date", "timestamp"):
            column = pd.to_datetime(column).astype("datetime64[us]")
        elif kind in ("double", "bigint", "integer"):
            column = pd.to_numeric(column).astype("float64")
        elif kind == "boolean":
            column = column.astype("boolean")
        else:
            column = column.astype("string")
        columns[name] = column
    return pd.DataFrame(columns, index=range(len(scores)))


def versions_from_history(reports: Iterable[tuple[int, pd.DataFrame]]) -> pd.DataFrame:
    """The versions that store `reports` (each run's whole scores, in run order) as changes:
    score columns with `valid_from_run` and `valid_to_run` (null while still reported)."""
    open_rows = pd.DataFrame(columns=[VALID_FROM, *SCORE_COLUMNS])
    finished = []
    for run_seq, scores in reports:
        changes = score_changes(open_rows, scores[SCORE_COLUMNS])
        if len(changes.closed):
            finished.append(changes.closed.assign(**{VALID_TO: run_seq}))
        kept = open_rows.drop(index=changes.closed.index)
        opened = changes.opened.assign(**{VALID_FROM: run_seq})
        open_rows = pd.concat([df for df in (kept, opened) if len(df)], ignore_index=True)
        if open_rows.empty:
            open_rows = pd.DataFrame(columns=[VALID_FROM, *SCORE_COLUMNS])
    versions = [*finished, open_rows.assign(**{VALID_TO: None})]
    result = pd.concat([v for v in versions if len(v)] or [versions[-1]], ignore_index=True)
    return result[[VALID_FROM, VALID_TO, *SCORE_COLUMNS]].sort_values(
        [*SCORE_KEYS, VALID_FROM], kind="stable", ignore_index=True
    )


def reported_in(versions: pd.DataFrame, run_seq: int) -> pd.DataFrame:
    """The score rows run `run_seq` reported, from its versions (the view's answer)."""
    live = (versions[VALID_FROM] <= run_seq) & (
        versions[VALID_TO].isna() | (versions[VALID_TO] > run_seq)
    )
    return versions.loc[live, SCORE_COLUMNS]
