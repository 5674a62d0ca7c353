-- grain: one row per source, medium and campaign that no tactic claims, across every measure
-- keys: source, medium, campaign
-- description: Traffic and email campaigns no tactic's UTM rules claim, sessions and email counts side by side, largest first: the list to fix UTM rules from.
-- preview_order_by: sessions desc nulls last, emails_sent desc nulls last, source, medium, campaign
with

-- Each combination's daily sums (a NULL sum: no row of that measure that day), so this
-- reads one row per day and combination, not every measure row of history.
traffic_sources_daily as (

    select * from {{ ref('int_traffic_sources_daily') }}

),

tactics as (

    select * from {{ ref('int_traffic_sources_mapped_to_tactics') }}

),

unattributed as (

    select traffic_sources_daily.*

    from traffic_sources_daily
    inner join tactics
        on traffic_sources_daily.source = tactics.source
        and traffic_sources_daily.medium = tactics.medium
        and traffic_sources_daily.campaign = tactics.campaign
    where tactics.tactic_id = 'unattributed'

),

-- Sums of daily sums: NULL only when no day had that measure, as a sum over the rows is.
final as (

    select
        source,
        medium,
        campaign,
        sum(sessions) as sessions,
        sum(key_events) as key_events,
        sum(emails_sent) as emails_sent,
        sum(emails_delivered) as emails_delivered,
        sum(email_unique_clicks) as email_unique_clicks,
        min(date) as first_seen,
        max(date) as last_seen

    from unattributed
    group by 1, 2, 3

)

select * from final
