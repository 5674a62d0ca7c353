"""Run check suites with Great Expectations (GX Core 1.x) against the warehouse.

Where GX runs: on PostgreSQL, a suite's query is a GX SQL data source query asset, so the
expectations run in the database. On DuckDB, GX's SQL path does not work through
duckdb-engine (it loses the schema of a table asset and fails on query assets), so the
query's rows are read into a frame and checked by GX's pandas engine; suites that derive
their checked columns in pandas (volume bands, quarantine rates, the snapshot ledger) take
that path on both engines. Either way, when an expectation fails, its offending rows are
fetched to report a sample and to flag the source days they belong to.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import itertools
import json
import os
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pandas as pd

from kpi_pipeline.checks.suites import Suite
from kpi_pipeline.lib.checks import Expect
from kpi_pipeline.warehouse.engine import Warehouse

SAMPLE_ROWS = 5
_names = itertools.count()


@dataclass
class Outcome:
    """One expectation of one suite, as the run saw it."""

    asset: tuple[str, str]
    check: str
    description: str
    severity: str
    passed: bool
    checked_rows: int
    failing_rows: int
    observed: str
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    flagged: pd.DataFrame = field(default_factory=pd.DataFrame)  # source_id, date


def run_suites(
    wh: Warehouse,
    suites: list[Suite],
    symbols: Mapping[str, Any],
    severity_of: Callable[[str], str],
) -> list[Outcome]:
    """Every expectation of every suite; `symbols` resolves named bounds (`today`...)."""
    return [outcome for suite in suites for outcome in _run_suite(wh, suite, symbols, severity_of)]


def _run_suite(
    wh: Warehouse, suite: Suite, symbols: Mapping[str, Any], severity_of: Callable[[str], str]
) -> list[Outcome]:
    sql = wh.plan_sql(suite.query)
    expectations = [_resolve(expect, symbols) for expect in suite.expectations]
    frame: pd.DataFrame | None = None
    in_database = wh.is_postgres and suite.derive is None
    if not in_database:
        frame = _read(wh, sql, suite.params)
        if suite.derive is not None:
            frame = suite.derive(frame)
        if frame.empty:  # nothing to check: every expectation holds (no GX round trip)
            return [
                Outcome(
                    suite.asset,
                    e.name,
                    e.description,
                    severity_of(e.name),
                    True,
                    0,
                    0,
                    "no rows to check",
                )
                for e in expectations
            ]
    if in_database:
        query = _with_limits(_inline(sql, suite.params), expectations)
        batch = _sql_asset(wh, query).add_batch_definition_whole_table(_name("b")).get_batch()
    else:
        assert frame is not None
        frame = _with_frame_limits(frame, expectations)
        batch = _frame_batches().get_batch(batch_parameters={"dataframe": frame})
    gx = _gx()
    groups = [
        (expect, _gx_expectations(gx, expect, hashed=not in_database)) for expect in expectations
    ]
    gx_suite = gx.ExpectationSuite(name=_name("suite"))
    for _, members in groups:
        for member in members:
            gx_suite.add_expectation(member)
    # GX regroups results (by column): match them to their expectations by configuration.
    by_config: dict[str, list[Any]] = {}
    for result in batch.validate(gx_suite, result_format="SUMMARY").results:
        by_config.setdefault(_config_key(result.expectation_config), []).append(result)
    outcomes = []
    for expect, members in groups:
        member_results = [by_config[_config_key(m.configuration)].pop(0) for m in members]
        errors = [message for r in member_results for message in _exceptions(r.exception_info)]
        passed = all(r.success for r in member_results) and not errors
        checked = max((int(r.result.get("element_count") or 0) for r in member_results), default=0)
        outcome = Outcome(
            asset=suite.asset,
            check=expect.name,
            description=expect.description,
            severity=severity_of(expect.name),
            passed=passed,
            checked_rows=checked,
            failing_rows=sum(int(r.result.get("unexpected_count") or 0) for r in member_results),
            observed="",
        )
        if not passed and not errors:
            if frame is None:
                frame = _with_frame_limits(_read(wh, sql, suite.params), expectations)
            failing = frame[_failing(frame, expect)]
            outcome.failing_rows = max(outcome.failing_rows, len(failing))
            outcome.checked_rows = max(outcome.checked_rows, len(frame))
            shown = [
                c
                for c in failing.columns
                if not c.endswith("__limit") and c not in (_KEY_HASH, _KEYS_NULL)
            ]
            outcome.sample = failing[shown].head(SAMPLE_ROWS).reset_index(drop=True)
            if suite.flag_columns is not None:
                outcome.flagged = (
                    failing[list(suite.flag_columns)]
                    .drop_duplicates()
                    .set_axis(["source_id", "date"], axis=1)
                    .reset_index(drop=True)
                )
        outcome.observed = (
            f"GX could not evaluate it: {errors[0]}"
            if errors
            else f"{outcome.failing_rows:,} of {outcome.checked_rows:,} row(s) fail"
        )
        outcomes.append(outcome)
    return outcomes


def _read(wh: Warehouse, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
    """The suite's rows as a frame; on DuckDB through its own Arrow result (ten times the
    speed of fetching rows through SQLAlchemy, which the checks would otherwise pay)."""
    if wh.dialect != "duckdb":
        return wh.read_frame(sql, params)
    with wh.engine.connect() as conn:
        return conn.connection.driver_connection.execute(_inline(sql, params)).df()


def _config_key(config: Any) -> str:
    """An expectation's type and arguments, the same on the way in and in its result."""
    kwargs = {
        k: v for k, v in dict(config.kwargs).items() if k not in ("result_format", "batch_id")
    }
    return f"{config.type}|{json.dumps(kwargs, sort_keys=True, default=str)}"


def _exceptions(info: Any) -> list[str]:
    """GX's exception info (flat, or keyed by metric) reduced to its messages' last lines."""
    if not isinstance(info, dict):
        return []
    if "raised_exception" in info or "exception_message" in info:
        message = info.get("exception_message")
        return (
            [str(message).strip().splitlines()[-1]]
            if info.get("raised_exception") or (message and info.get("exception_traceback"))
            else []
        )
    return [m for value in info.values() for m in _exceptions(value)]


def _resolve(expect: Expect, symbols: Mapping[str, Any]) -> Expect:
    """Named bounds (`history_start`, `today`, plan thresholds) replaced by their values."""

    def value(bound: Any) -> Any:
        return symbols[bound] if isinstance(bound, str) and bound in symbols else bound

    return Expect(
        expect.name,
        expect.kind,
        expect.columns,
        expect.description,
        value(expect.min_value),
        value(expect.max_value),
        expect.value_set,
        value(expect.factor),
    )


def _limit_column(expect: Expect) -> str:
    return f"{expect.name}__limit"


def _with_limits(sql: str, expectations: list[Expect]) -> str:
    """`a <= factor x b` checks compare `a` with a computed `b__limit` column."""
    scaled = [e for e in expectations if e.kind == "a_le_b"]
    if not scaled:
        return sql
    extra = ", ".join(
        f"q.{e.columns[1]} * {float(e.factor)!r} as {_limit_column(e)}" for e in scaled
    )
    return f"select q.*, {extra} from ({sql}) as q"


_KEY_HASH = "__key_hash"
_KEYS_NULL = "__keys_null"


def _with_frame_limits(frame: pd.DataFrame, expectations: list[Expect]) -> pd.DataFrame:
    """Computed columns the frame path checks: `b__limit`, and one 64-bit hash of a
    compound key (GX's compound uniqueness on many text columns is ten times slower)."""
    for e in expectations:
        if e.kind == "between" and any(
            isinstance(_bound(b), dt.date) for b in (e.min_value, e.max_value)
        ):
            # Date bounds meet timestamps: the columns are read as such, whatever the driver.
            frame = frame.assign(**{c: pd.to_datetime(frame[c]) for c in e.columns})
        if e.kind == "not_null" and len(e.columns) > 1 and _KEYS_NULL not in frame:
            frame = frame.assign(**{_KEYS_NULL: frame[list(e.columns)].isna().any(axis=1)})
        if e.kind == "unique" and len(e.columns) > 1 and _KEY_HASH not in frame:
            hashed = pd.util.hash_pandas_object(frame[list(e.columns)], index=False)
            frame = frame.assign(**{_KEY_HASH: hashed.to_numpy()})
        if e.kind == "a_le_b":
            frame = frame.assign(
                **{_limit_column(e): frame[e.columns[1]].astype(float) * float(e.factor)}
            )
    return frame


def _gx_expectations(gx: Any, expect: Expect, hashed: bool = False) -> list[Any]:
    e = gx.expectations
    columns = list(expect.columns)
    if expect.kind == "unique":
        if hashed and len(columns) > 1:
            return [e.ExpectColumnValuesToBeUnique(column=_KEY_HASH)]
        if len(columns) == 1:
            return [e.ExpectColumnValuesToBeUnique(column=columns[0])]
        return [e.ExpectCompoundColumnsToBeUnique(column_list=columns)]
    if expect.kind == "not_null":
        if hashed and len(columns) > 1:  # the frame path: one pass over a computed column
            return [e.ExpectColumnValuesToBeInSet(column=_KEYS_NULL, value_set=[False])]
        return [e.ExpectColumnValuesToNotBeNull(column=c) for c in columns]
    if expect.kind == "between":
        low, high = _bound(expect.min_value), _bound(expect.max_value)
        if hashed:  # the frame path: dates are pandas timestamps there
            low, high = (pd.Timestamp(b) if isinstance(b, dt.date) else b for b in (low, high))
        return [
            e.ExpectColumnValuesToBeBetween(column=c, min_value=low, max_value=high)
            for c in columns
        ]
    if expect.kind == "a_le_b":
        return [
            e.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=_limit_column(expect),
                column_B=columns[0],
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        ]
    if expect.kind == "in_set":
        return [
            e.ExpectColumnValuesToBeInSet(column=c, value_set=list(expect.value_set))
            for c in columns
        ]
    raise ValueError(f"unknown expectation kind {expect.kind!r}")


def _bound(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return dt.date.fromisoformat(value)
    return value


def _failing(frame: pd.DataFrame, expect: Expect) -> pd.Series:
    """The rows breaking `expect` (the same rule GX applied), for samples and flags."""
    columns = list(expect.columns)
    if expect.kind == "unique":
        return frame.duplicated(subset=columns, keep=False)
    if expect.kind == "not_null":
        return frame[columns].isna().any(axis=1)
    if expect.kind == "between":
        mask = pd.Series(False, index=frame.index)
        for column in columns:
            values = frame[column]
            low, high = _bound(expect.min_value), _bound(expect.max_value)
            if isinstance(low, dt.date) or isinstance(high, dt.date):
                values = pd.to_datetime(values)
                low = pd.Timestamp(low) if low is not None else None
                high = pd.Timestamp(high) if high is not None else None
            if low is not None:
                mask |= values < low
            if high is not None:
                mask |= values > high
        return mask
    if expect.kind == "a_le_b":
        return frame[columns[0]].astype(float) > frame[_limit_column(expect)].astype(float)
    if expect.kind == "in_set":
        return ~frame[columns].isin(list(expect.value_set)).all(axis=1)
    raise ValueError(f"unknown expectation kind {expect.kind!r}")


def _inline(sql: str, params: Mapping[str, Any]) -> str:
    """Bind parameters written as literals (GX query assets take SQL text): only dates,
    numbers and plain identifiers, which need no escaping beyond quoting."""

    def literal(match: re.Match[str]) -> str:
        value = params[match.group(1)]
        if isinstance(value, dt.date):
            return f"date '{value.isoformat()}'"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return repr(value)
        if isinstance(value, str) and re.fullmatch(r"[a-z_][a-z0-9_]*", value):
            return f"'{value}'"
        raise ValueError(f"cannot inline parameter {match.group(1)}={value!r}")

    return re.sub(r"(?<!:):([a-z_][a-z0-9_]*)", literal, sql)


def _name(prefix: str) -> str:
    return f"{prefix}_{next(_names)}"


# Modules GX imports at its start only for expectations and renderers these checks never
# use (the KL-divergence and KS-test expectations: scipy.stats; their charts: altair):
# about half of GX's import time. They are put in place as placeholders that import the
# real module the first time one of their attributes is read, so anything that does use
# them still gets them, and nothing is changed when they were imported already.
_DEFERRED_BY_GX = ("scipy.stats", "altair")


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in `sys.modules` for a module until an attribute of it is read."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)


def _defer_imports(names: tuple[str, ...]) -> None:
    for name in names:
        if name in sys.modules or importlib.util.find_spec(name.split(".")[0]) is None:
            continue
        sys.modules[name] = _ImportedOnFirstUse(name)


@cache
def _gx() -> Any:
    """GX, imported once per process, without telemetry and without the parts of its
    import these checks never use (`_DEFERRED_BY_GX`)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    _defer_imports(_DEFERRED_BY_GX)
    import great_expectations as gx

    return gx


@cache
def _context() -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


@cache
def _pandas_source() -> Any:
    return _context().data_sources.add_pandas(name="frames")


@cache
def _frame_batches() -> Any:
    """One dataframe asset for every frame checked in this process, each its own batch
    (`get_batch` with the frame): adding an asset per suite cost GX more than checking it."""
    return (
        _pandas_source()
        .add_dataframe_asset(name="frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )


_sql_sources: dict[str, Any] = {}


def _sql_asset(wh: Warehouse, query: str) -> Any:
    url = wh.engine.url.render_as_string(hide_password=False)
    source = _sql_sources.get(url)
    if source is None:
        source = _context().data_sources.add_sql(name=_name("warehouse"), connection_string=url)
        _sql_sources[url] = source
    return source.add_query_asset(name=_name("query"), query=query)
