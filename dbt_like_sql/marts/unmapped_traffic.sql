-- grain: one row per source, medium and campaign that no tactic claims, across every measure
-- keys: source, medium, campaign
-- description: Traffic and email campaigns no tactic's UTM rules claim, sessions and email counts side by side, largest first: the list to fix UTM rules from.
-- preview_order_by: sessions desc nulls last, emails_sent desc nulls last, source, medium, campaign
with

measures as (

    select * from {{ ref('int_measures_unioned') }}

),

tactics as (

    select * from {{ ref('int_traffic_sources_mapped_to_tactics') }}

),

unattributed as (

    select
        measures.source,
        measures.medium,
        measures.campaign,
        measures.date,
        measures.measure_id,
        measures.value

    from measures
    inner join tactics
        on measures.source = tactics.source
        and measures.medium = tactics.medium
        and measures.campaign = tactics.campaign
    where tactics.tactic_id = 'unattributed'

),

final as (

    select
        source,
        medium,
        campaign,
        sum(case when measure_id = 'sessions' then value end) as sessions,
        sum(case when measure_id = 'key_events' then value end) as key_events,
        sum(case when measure_id = 'emails_sent' then value end) as emails_sent,
        sum(case when measure_id = 'emails_delivered' then value end) as emails_delivered,
        sum(case when measure_id = 'email_unique_clicks' then value end) as email_unique_clicks,
        min(date) as first_seen,
        max(date) as last_seen

    from unattributed
    group by 1, 2, 3

)

select * from final
