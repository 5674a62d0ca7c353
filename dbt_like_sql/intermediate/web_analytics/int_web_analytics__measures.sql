-- grain: one row per source, day, source/medium/campaign, device and measure (sessions, engaged sessions, key events, declared event counts)
-- keys: source_id, date, source, medium, campaign, device, measure_id
-- materialized: incremental
-- partition_by: date
-- description: Web analytics traffic and event counts (CSV exports and GA4 alike) as additive measures in one long shape, ready to union with other sources.
with

traffic as (

    select source_id, date, source, medium, campaign, device, sessions, engaged_sessions, key_events
    from {{ ref('stg_csv__traffic') }}
    where {{ incremental_days('date') }}
    union all
    select source_id, date, source, medium, campaign, device, sessions, engaged_sessions, key_events
    from {{ ref('stg_ga4__traffic') }}
    where {{ incremental_days('date') }}

),

events as (

    select source_id, date, source, medium, campaign, device, event_name, event_count
    from {{ ref('stg_csv__events') }}
    where {{ incremental_days('date') }}
    union all
    select source_id, date, source, medium, campaign, device, event_name, event_count
    from {{ ref('stg_ga4__events') }}
    where {{ incremental_days('date') }}

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

-- Landing pages are not a KPI dimension: rows of one source day and UTM combination add up.
final as (

    select source_id, date, source, medium, campaign, device, measure_id, sum(value) as value
    from (
        select * from traffic_measures
        union all
        select * from event_measures
    ) as measures
    group by 1, 2, 3, 4, 5, 6, 7

)

select * from final
