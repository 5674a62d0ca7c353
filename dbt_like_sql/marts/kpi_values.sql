-- grain: one row per kpi, grain, period_start, segment_type and segment
-- keys: kpi_id, grain, period_start, segment_type, segment
-- description: KPI numerator, denominator and value per period, as a ratio of sums (never an average of daily ratios); is_partial marks periods not wholly covered by loaded days.
with

measures as (

    select * from {{ ref('int_measures_aggregated_daily') }}

),

kpis as (

    select * from {{ source('plan', 'kpis') }}

),

kpi_grains as (

    select * from {{ source('plan', 'kpi_grains') }}

),

calendar as (

    select * from {{ source('plan', 'calendar') }}

),

quality_flags_daily as (

    select * from {{ ref('int_ga4__quality_flags_daily') }}

),

loaded_days as (

    select min(date) as first_day, max(date) as last_day from measures

),

kpi_measures_daily as (

    select * from {{ ref('int_kpi_measures_daily') }}

),

summed_by_period as (

    select
        kpi_measures_daily.kpi_id,
        kpi_grains.grain,
        calendar.period_start,
        calendar.period_end,
        calendar.period_label,
        kpi_measures_daily.segment_type,
        kpi_measures_daily.segment,
        sum(kpi_measures_daily.numerator) as numerator,
        sum(kpi_measures_daily.denominator) as denominator,
        count(distinct kpi_measures_daily.date) as days_with_data

    from kpi_measures_daily
    inner join kpi_grains
        on kpi_grains.kpi_id = kpi_measures_daily.kpi_id
    inner join calendar
        on calendar.date = kpi_measures_daily.date
        and calendar.grain = kpi_grains.grain
    group by 1, 2, 3, 4, 5, 6, 7

),

period_flags as (

    select
        flagged.kpi_id,
        flagged.grain,
        flagged.period_start,
        flagged.segment_type,
        flagged.segment,
        string_agg(flagged.quality_flag, ',' order by flagged.quality_flag) as quality_flags

    from (
        select distinct
            kpi_measures_daily.kpi_id,
            kpi_grains.grain,
            calendar.period_start,
            kpi_measures_daily.segment_type,
            kpi_measures_daily.segment,
            quality_flags_daily.quality_flag
        from kpi_measures_daily
        inner join kpi_grains
            on kpi_grains.kpi_id = kpi_measures_daily.kpi_id
        inner join calendar
            on calendar.date = kpi_measures_daily.date
            and calendar.grain = kpi_grains.grain
        inner join quality_flags_daily
            on quality_flags_daily.date = kpi_measures_daily.date
    ) as flagged
    group by 1, 2, 3, 4, 5

),

final as (

    select
        summed_by_period.kpi_id,
        summed_by_period.grain,
        summed_by_period.period_start,
        summed_by_period.period_end,
        summed_by_period.period_label,
        summed_by_period.segment_type,
        summed_by_period.segment,
        summed_by_period.numerator,
        case when kpis.denominator_measure is not null then summed_by_period.denominator end as denominator,
        case
            when kpis.denominator_measure is null then summed_by_period.numerator
            when summed_by_period.denominator > 0 then summed_by_period.numerator / summed_by_period.denominator
        end as value,
        summed_by_period.days_with_data,
        (
            summed_by_period.period_start < loaded_days.first_day
            or summed_by_period.period_end > loaded_days.last_day
        ) as is_partial,
        loaded_days.last_day as as_of_date,
        period_flags.quality_flags

    from summed_by_period
    inner join kpis
        on kpis.kpi_id = summed_by_period.kpi_id
    cross join loaded_days
    left join period_flags
        on period_flags.kpi_id = summed_by_period.kpi_id
        and period_flags.grain = summed_by_period.grain
        and period_flags.period_start = summed_by_period.period_start
        and period_flags.segment_type = summed_by_period.segment_type
        and period_flags.segment = summed_by_period.segment

)

select * from final
