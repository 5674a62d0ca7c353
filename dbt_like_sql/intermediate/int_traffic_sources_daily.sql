-- grain: one row per day and source, medium and campaign with any measure that day
-- keys: date, source, medium, campaign
-- materialized: incremental
-- partition_by: date
-- description: Each UTM combination seen on a day, with that day's sums of the measures unmapped_traffic lists (NULL when the combination had none of that measure): a day's rows are rebuilt with the day, so the tactic mapping and the unmapped list read this small table instead of every measure row of history.
with

measures as (

    select * from {{ ref('int_measures_unioned') }} where {{ incremental_days('date') }}

),

final as (

    select
        date,
        source,
        medium,
        campaign,
        sum(case when measure_id = 'sessions' then value end) as sessions,
        sum(case when measure_id = 'key_events' then value end) as key_events,
        sum(case when measure_id = 'emails_sent' then value end) as emails_sent,
        sum(case when measure_id = 'emails_delivered' then value end) as emails_delivered,
        sum(case when measure_id = 'email_unique_clicks' then value end) as email_unique_clicks

    from measures
    group by 1, 2, 3, 4

)

select * from final
