-- grain: one row per traffic row and event name with a non-zero count
-- keys: source_id, date, source, medium, campaign, landing_page, device, event_name
-- description: CSV event counts, renamed and cast; UTM values lower-cased for matching.
with

source as (

    select * from {{ source('raw', 'csv_events') }}

),

-- Only sources the plan declares and lets feed the KPIs count: rows of a removed source,
-- or of the kind traffic_source did not choose, stay in raw but are never read here.
active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'csv_exports'

),

renamed as (

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

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
