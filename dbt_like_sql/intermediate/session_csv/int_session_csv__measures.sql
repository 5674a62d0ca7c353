-- grain: one row per source, day, UTM values, audience and measure
-- keys: source_id, date, source, medium, campaign, audience, measure_id
-- materialized: incremental
-- partition_by: date
-- description: Session-level rows counted into sessions, key events (converted sessions) and engaged sessions, per day and audience.
with

sessions as (

    select * from {{ ref('stg_session_csv__sessions') }} where {{ incremental_days('date') }}

),

counted as (

    select
        source_id,
        date,
        source,
        medium,
        campaign,
        audience,
        count(*) as sessions,
        sum(case when converted then 1 else 0 end) as key_events,
        sum(case when engaged then 1 else 0 end) as engaged_sessions,
        count(engaged) as sessions_with_engagement

    from sessions
    group by 1, 2, 3, 4, 5, 6

),

final as (

    select source_id, date, source, medium, campaign, '(not set)' as device, audience, 'sessions' as measure_id, cast(sessions as double) as value from counted
    union all
    select source_id, date, source, medium, campaign, '(not set)' as device, audience, 'key_events' as measure_id, cast(key_events as double) as value from counted
    union all
    -- Engagement is counted only where the file says it: no column, no engaged_sessions.
    select source_id, date, source, medium, campaign, '(not set)' as device, audience, 'engaged_sessions' as measure_id, cast(engaged_sessions as double) as value from counted
    where sessions_with_engagement > 0

)

select * from final
