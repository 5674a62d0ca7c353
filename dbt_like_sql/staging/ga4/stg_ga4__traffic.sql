-- grain: one row per source, date, session source/medium/campaign, landing page and device
-- keys: source_id, date, source, medium, campaign, landing_page, device
-- description: GA4 traffic rows, renamed and cast; UTM values lower-cased for matching.

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
    cast(sessions as bigint) as sessions,
    cast(engaged_sessions as bigint) as engaged_sessions,
    cast(key_events as double) as key_events

from {{ source('raw', 'ga4_traffic') }}
where source_id = any(array((
    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'ga4'
)))
