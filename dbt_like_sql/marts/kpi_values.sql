-- grain: one row per kpi, grain, period_start, segment_type and segment
-- keys: kpi_id, grain, period_start, segment_type, segment
-- description: KPI numerator, denominator and value per period, as a ratio of sums (never an average of daily ratios); users KPIs take GA4's count for the whole period (never a sum of days); is_partial marks periods not wholly covered by loaded days.
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

kpi_segments as (

    select * from {{ source('plan', 'kpi_segments') }}

),

period_users as (

    select * from {{ ref('stg_ga4__period_users') }}

),

period_labels as (

    select distinct grain, period_start, period_label from calendar

),

loaded_dates as (

    select distinct date from measures

),

-- Users are not additive across days: each period's figure is GA4's own count from the
-- period's start to through_day (one request per period), summed only across properties.
users_by_period as (

    select
        period_users.kpi_id,
        period_users.grain,
        period_users.period_start,
        period_users.period_end,
        period_users.segment_type,
        period_users.segment,
        min(period_users.through_day) as through_day,
        sum(period_users.users) as users,
        max(period_users.quality_flags) as quality_flags

    from period_users
    inner join kpis
        on kpis.kpi_id = period_users.kpi_id
        and kpis.kind = 'users'
    inner join kpi_grains
        on kpi_grains.kpi_id = period_users.kpi_id
        and kpi_grains.grain = period_users.grain
    inner join kpi_segments
        on kpi_segments.kpi_id = period_users.kpi_id
        and kpi_segments.segment_type = period_users.segment_type
    group by 1, 2, 3, 4, 5, 6

),

users_days as (

    select
        users_by_period.kpi_id,
        users_by_period.grain,
        users_by_period.period_start,
        users_by_period.segment_type,
        users_by_period.segment,
        count(distinct loaded_dates.date) as days_with_data

    from users_by_period
    inner join loaded_dates
        on loaded_dates.date >= users_by_period.period_start
        and loaded_dates.date <= users_by_period.through_day
    group by 1, 2, 3, 4, 5

),

users_values as (

    select
        users_by_period.kpi_id,
        users_by_period.grain,
        users_by_period.period_start,
        users_by_period.period_end,
        period_labels.period_label,
        users_by_period.segment_type,
        users_by_period.segment,
        cast(users_by_period.users as double) as numerator,
        cast(null as double) as denominator,
        cast(users_by_period.users as double) as value,
        coalesce(users_days.days_with_data, 0) as days_with_data,
        (
            users_by_period.period_start < loaded_days.first_day
            or users_by_period.period_end > loaded_days.last_day
            or users_by_period.through_day < users_by_period.period_end
        ) as is_partial,
        loaded_days.last_day as as_of_date,
        users_by_period.quality_flags

    from users_by_period
    cross join loaded_days
    inner join period_labels
        on period_labels.grain = users_by_period.grain
        and period_labels.period_start = users_by_period.period_start
    left join users_days
        on users_days.kpi_id = users_by_period.kpi_id
        and users_days.grain = users_by_period.grain
        and users_days.period_start = users_by_period.period_start
        and users_days.segment_type = users_by_period.segment_type
        and users_days.segment = users_by_period.segment

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

    union all

    select * from users_values

)

select * from final
