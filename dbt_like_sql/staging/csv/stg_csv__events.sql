-- grain: one row per traffic row and event name with a non-zero count
-- keys: source_id, date, source, medium, campaign, landing_page, device, event_name
-- description: CSV event counts, renamed and cast; UTM values lower-cased for matching.
with

source as (

    select * from {{ source('raw', 'csv_events') }}

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

)

select * from renamed
