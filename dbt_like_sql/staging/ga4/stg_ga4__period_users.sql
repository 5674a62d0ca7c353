-- grain: one row per source, users KPI, grain, period and segment
-- keys: source_id, kpi_id, grain, period_start, segment_type, segment
-- description: Users of each users KPI's period as GA4 counted them in one request from the period's start to through_day (never summed from days); devices lower-cased.
with

source as (

    select * from {{ source('raw', 'ga4_period_users') }}

),

-- Only sources the plan declares and lets feed the KPIs count: rows of a removed source,
-- or of the kind traffic_source did not choose, stay in raw but are never read here.
active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'ga4'

),

renamed as (

    select
        source_id,
        kpi_id,
        grain,
        cast(period_start as date) as period_start,
        cast(period_end as date) as period_end,
        cast(through_day as date) as through_day,
        segment_type,
        case when segment_type = 'device' then lower(segment) else segment end as segment,
        users,
        quality_flags

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
