-- grain: one row per session (file and line)
-- keys: source_id, file, line
-- description: Session-level CSV rows, renamed and cast; UTM values lower-cased for matching.

-- One SELECT, no WITH: PostgreSQL merges such a view into the query reading it, so a
-- run's date filter reaches the raw table's (source_id, date) index (a view with a WITH is
-- planned on its own: every row of history read, then joined with the run's days). Only
-- sources the plan declares and lets feed the KPIs count, as a list rather than a semi-join
-- for the same index (`array((...))`: sqlglot also writes that one for Snowflake); rows of
-- a removed source, or of the kind traffic_source did not choose, stay in raw but are
-- never read here.
select
    source_id,
    cast(date as date) as date,
    lower(source) as source,
    lower(medium) as medium,
    lower(campaign) as campaign,
    audience,
    converted,
    engaged,
    file,
    line

from {{ source('raw', 'session_csv_rows') }}
where source_id = any(array((
    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'session_csvs'
)))
