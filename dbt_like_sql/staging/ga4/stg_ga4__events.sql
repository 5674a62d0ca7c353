-- grain: one row per source, date, event name, session source/medium/campaign and device
-- keys: source_id, date, event_name, source, medium, campaign, device
-- description: GA4 event counts of the events the plan's measures name, renamed and cast.
with

source as (

    select * from {{ source('raw', 'ga4_events') }}

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
        cast(date as date) as date,
        event_name,
        lower(source) as source,
        lower(medium) as medium,
        lower(campaign) as campaign,
        lower(device) as device,
        cast(event_count as double) as event_count

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
