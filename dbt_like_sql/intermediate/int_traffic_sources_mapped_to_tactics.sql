-- grain: one row per distinct source, medium and campaign seen in the data
-- keys: source, medium, campaign
-- description: Each UTM combination attributed to the first plan tactic whose rules match it.
with

-- One row per day and combination (not every measure row of history): a small scan.
traffic_sources_daily as (

    select * from {{ ref('int_traffic_sources_daily') }}

),

rules as (

    select * from {{ source('plan', 'tactic_rules') }}

),

utm_combinations as (

    select distinct source, medium, campaign from traffic_sources_daily

),

matched_rules as (

    select
        utm_combinations.source,
        utm_combinations.medium,
        utm_combinations.campaign,
        rules.tactic_id,
        rules.channel,
        row_number() over (
            partition by utm_combinations.source, utm_combinations.medium, utm_combinations.campaign
            order by rules.rule_order
        ) as match_rank

    from utm_combinations
    inner join rules
        on (rules.source_pattern is null or utm_combinations.source like rules.source_pattern escape '\')
        and (rules.medium_pattern is null or utm_combinations.medium like rules.medium_pattern escape '\')
        and (rules.campaign_pattern is null or utm_combinations.campaign like rules.campaign_pattern escape '\')

),

final as (

    select
        utm_combinations.source,
        utm_combinations.medium,
        utm_combinations.campaign,
        coalesce(matched_rules.tactic_id, 'unattributed') as tactic_id,
        coalesce(matched_rules.channel, 'unattributed') as channel

    from utm_combinations
    left join matched_rules
        on utm_combinations.source = matched_rules.source
        and utm_combinations.medium = matched_rules.medium
        and utm_combinations.campaign = matched_rules.campaign
        and matched_rules.match_rank = 1

)

select * from final
