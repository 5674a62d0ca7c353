-- grain: one row per traffic row and event name with a non-zero count
-- keys: source_id, date, source, medium, campaign, landing_page, device, event_name
-- description: CSV event counts, renamed and cast; UTM values lower-cased for matching.

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
    landing_page,
    lower(device) as device,
    event_name,
    cast(event_count as double) as event_count

from {{ source('raw', 'csv_events') }}
where source_id = any(array((
    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'csv_exports'
)))
