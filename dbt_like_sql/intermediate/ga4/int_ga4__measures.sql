-- grain: one row per source row and measure (sessions, engaged sessions, key events, declared event counts)
-- keys: source_id, date, source, medium, campaign, landing_page, device, measure_id
-- description: GA4 traffic and event counts as additive measures in the shape of int_csv__measures.
with

traffic as (

    select * from {{ ref('stg_ga4__traffic') }}

),

events as (

    select * from {{ ref('stg_ga4__events') }}

),

measures as (

    select * from {{ source('plan', 'measures') }}

),

traffic_measures as (

    select source_id, date, source, medium, campaign, device, 'sessions' as measure_id, cast(sessions as double) as value from traffic
    union all
    select source_id, date, source, medium, campaign, device, 'engaged_sessions' as measure_id, cast(engaged_sessions as double) as value from traffic
    union all
    select source_id, date, source, medium, campaign, device, 'key_events' as measure_id, key_events as value from traffic

),

event_measures as (

    select
        events.source_id,
        events.date,
        events.source,
        events.medium,
        events.campaign,
        events.device,
        measures.measure_id,
        events.event_count as value

    from events
    inner join measures
        on events.event_name = measures.event_name

),

final as (

    select * from traffic_measures
    union all
    select * from event_measures

)

select * from final
