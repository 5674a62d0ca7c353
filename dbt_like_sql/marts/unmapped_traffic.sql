-- grain: one row per source, medium and campaign whose traffic matched no tactic
-- keys: source, medium, campaign
-- description: Sessions no tactic's UTM rules claim, largest first: the list to fix UTM rules from.
-- preview_order_by: sessions desc, source, medium, campaign
with

measures as (

    select * from {{ ref('int_measures_unioned') }}

),

tactics as (

    select * from {{ ref('int_traffic_sources_mapped_to_tactics') }}

),

unattributed_sessions as (

    select
        measures.source,
        measures.medium,
        measures.campaign,
        measures.date,
        measures.value as sessions

    from measures
    inner join tactics
        on measures.source = tactics.source
        and measures.medium = tactics.medium
        and measures.campaign = tactics.campaign
    where tactics.tactic_id = 'unattributed'
        and measures.measure_id = 'sessions'

),

final as (

    select
        source,
        medium,
        campaign,
        sum(sessions) as sessions,
        min(date) as first_seen,
        max(date) as last_seen

    from unattributed_sessions
    group by 1, 2, 3

)

select * from final
