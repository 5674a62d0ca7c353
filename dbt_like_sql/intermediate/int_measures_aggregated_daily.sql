-- grain: one row per date, measure, tactic, channel, device and audience
-- keys: date, measure_id, tactic_id, channel, device, audience
-- materialized: incremental
-- partition_by: date
-- description: Every additive measure of every source summed per day, tactic, channel, device and audience.
with

all_measures as (

    select * from {{ ref('int_measures_unioned') }} where {{ incremental_days('date') }}

),

tactics as (

    select * from {{ ref('int_traffic_sources_mapped_to_tactics') }}

),

final as (

    select
        all_measures.date,
        all_measures.measure_id,
        tactics.tactic_id,
        tactics.channel,
        all_measures.device,
        all_measures.audience,
        sum(all_measures.value) as value

    from all_measures
    inner join tactics
        on all_measures.source = tactics.source
        and all_measures.medium = tactics.medium
        and all_measures.campaign = tactics.campaign
    group by 1, 2, 3, 4, 5, 6

)

select * from final
