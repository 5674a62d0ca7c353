-- grain: one row per source, date, source/medium/campaign, landing page and device
-- keys: source_id, date, source, medium, campaign, landing_page, device
-- description: CSV traffic rows, renamed and cast; UTM values lower-cased for matching.
with

source as (

    select * from {{ source('raw', 'csv_traffic') }}

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
        cast(sessions as bigint) as sessions,
        cast(engaged_sessions as bigint) as engaged_sessions,
        cast(key_events as double) as key_events

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
