-- grain: one row per source, date, event name, session source/medium/campaign and device
-- keys: source_id, date, event_name, source, medium, campaign, device
-- description: GA4 event counts of the events the plan's measures name, renamed and cast.

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
    event_name,
    lower(source) as source,
    lower(medium) as medium,
    lower(campaign) as campaign,
    lower(device) as device,
    cast(event_count as double) as event_count

from {{ source('raw', 'ga4_events') }}
where source_id = any(array((
    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'ga4'
)))
