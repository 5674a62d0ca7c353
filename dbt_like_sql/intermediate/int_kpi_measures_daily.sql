-- grain: one row per kpi, date, segment_type and segment
-- keys: kpi_id, date, segment_type, segment
-- materialized: incremental
-- partition_by: date
-- description: Each KPI's numerator (a complement: the denominator minus the measure) and denominator per loaded day and segment, so a partial period can be compared with the same elapsed days of the previous one (same joins as kpi_values).
with

measures as (

    select * from {{ ref('int_measures_aggregated_daily') }} where {{ incremental_days('date') }}

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

summed_daily as (

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
        sum(case when measures.measure_id = kpis.numerator_measure then measures.value else 0 end) as numerator_measure_sum,
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

-- A complement numerator (bounce: sessions not engaged) is the denominator minus the
-- measure, per day and segment, so it stays additive and no file is read twice.
final as (

    select
        summed_daily.kpi_id,
        summed_daily.date,
        summed_daily.segment_type,
        summed_daily.segment,
        case
            when kpis.numerator_is_complement then summed_daily.denominator - summed_daily.numerator_measure_sum
            else summed_daily.numerator_measure_sum
        end as numerator,
        summed_daily.denominator

    from summed_daily
    inner join kpis
        on kpis.kpi_id = summed_daily.kpi_id

)

select * from final
