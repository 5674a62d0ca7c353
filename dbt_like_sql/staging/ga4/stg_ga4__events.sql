-- grain: one row per source, date, event name, session source/medium/campaign and device
-- keys: source_id, date, event_name, source, medium, campaign, device
-- description: GA4 event counts of the events the plan's measures name, renamed and cast.
with

source as (

    select * from {{ source('raw', 'ga4_events') }}

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

)

select * from renamed
