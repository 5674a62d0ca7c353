-- grain: one row per kpi, date, segment_type and segment
-- keys: kpi_id, date, segment_type, segment
-- description: Each KPI's numerator and denominator per loaded day and segment, so a partial period can be compared with the same elapsed days of the previous one (same joins as kpi_values).
with

measures as (

    select * from {{ ref('int_measures_aggregated_daily') }}

),

kpis as (

    select * from {{ source('plan', 'kpis') }}

),

kpi_segments as (

    select * from {{ source('plan', 'kpi_segments') }}

),

kpi_tactics as (

    select * from {{ source('plan', 'kpi_tactics') }}

),

kpi_measures_daily as (

    select
        kpis.kpi_id,
        measures.date,
        kpi_segments.segment_type,
        case kpi_segments.segment_type
            when 'all' then 'all'
            when 'tactic' then measures.tactic_id
            when 'channel' then measures.channel
            when 'device' then measures.device
            when 'audience' then measures.audience
        end as segment,
        sum(case when measures.measure_id = kpis.numerator_measure then measures.value else 0 end) as numerator,
        sum(case when measures.measure_id = kpis.denominator_measure then measures.value else 0 end) as denominator

    from kpis
    inner join measures
        on measures.measure_id = kpis.numerator_measure
        or measures.measure_id = kpis.denominator_measure
    inner join kpi_tactics
        on kpi_tactics.kpi_id = kpis.kpi_id
        and kpi_tactics.tactic_id = measures.tactic_id
    inner join kpi_segments
        on kpi_segments.kpi_id = kpis.kpi_id
    group by 1, 2, 3, 4

),

final as (

    select * from kpi_measures_daily

)

select * from final
