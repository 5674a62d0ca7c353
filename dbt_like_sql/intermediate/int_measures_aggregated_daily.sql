-- grain: one row per date, measure, tactic, channel and device
-- keys: date, measure_id, tactic_id, channel, device
-- description: Every additive measure (sessions, engaged sessions, key events, declared event counts) summed per day and segment.
with

traffic as (

    select * from {{ ref('stg_csv__traffic') }}

),

events as (

    select * from {{ ref('stg_csv__events') }}

),

measures as (

    select * from {{ source('plan', 'measures') }}

),

tactics as (

    select * from {{ ref('int_traffic_sources_mapped_to_tactics') }}

),

traffic_measures as (

    select date, source, medium, campaign, device, 'sessions' as measure_id, cast(sessions as double) as value from traffic
    union all
    select date, source, medium, campaign, device, 'engaged_sessions' as measure_id, cast(engaged_sessions as double) as value from traffic
    union all
    select date, source, medium, campaign, device, 'key_events' as measure_id, key_events as value from traffic

),

event_measures as (

    select
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

all_measures as (

    select * from traffic_measures
    union all
    select * from event_measures

),

final as (

    select
        all_measures.date,
        all_measures.measure_id,
        tactics.tactic_id,
        tactics.channel,
        all_measures.device,
        sum(all_measures.value) as value

    from all_measures
    inner join tactics
        on all_measures.source = tactics.source
        and all_measures.medium = tactics.medium
        and all_measures.campaign = tactics.campaign
    group by 1, 2, 3, 4, 5

)

select * from final
