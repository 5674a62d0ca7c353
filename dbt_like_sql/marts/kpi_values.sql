-- grain: one row per kpi, grain, period_start, segment_type and segment
-- keys: kpi_id, grain, period_start, segment_type, segment
-- materialized: incremental
-- partition_by: grain, period_start
-- description: KPI numerator, denominator and value per period, as a ratio of sums over the days the KPI's sources covered (never an average of daily ratios); users KPIs take GA4's count for the whole period (never a sum of days). is_partial marks periods some of whose days the KPI's sources did not cover; covered_from / covered_to are the days a period is judged on; a covered period with nothing counted is a real 0.
with

kpi_measures_daily as (

    select * from {{ ref('int_kpi_measures_daily') }} where {{ incremental_period_days('date') }}

),

kpi_days as (

    select * from {{ ref('int_kpi_days_covered') }} where {{ incremental_period_days('date') }}

),

kpis as (

    select * from {{ source('plan', 'kpis') }}

),

kpi_grains as (

    select * from {{ source('plan', 'kpi_grains') }}

),

kpi_segments as (

    select * from {{ source('plan', 'kpi_segments') }}

),

kpi_sources as (

    select * from {{ source('plan', 'kpi_sources') }}

),

calendar as (

    select * from {{ source('plan', 'calendar') }}
    where {{ incremental_periods('grain', 'period_start') }}

),

quality_flags_daily as (

    select * from {{ ref('int_quality_flags_daily') }} where {{ incremental_period_days('date') }}

),

period_users as (

    select * from {{ ref('stg_ga4__period_users') }}
    where {{ incremental_periods('grain', 'period_start') }}

),

-- Days a users KPI's GA4 sources had rows (what days_with_data counts for it).
users_row_days as (

    select distinct kpi_sources.kpi_id, measures.date
    from {{ ref('int_measures_unioned') }} as measures
    inner join kpi_sources
        on kpi_sources.source_id = measures.source_id
    inner join kpis
        on kpis.kpi_id = kpi_sources.kpi_id
        and kpis.kind = 'users'
    where {{ incremental_period_days('measures.date') }}

),

period_days as (

    select grain, period_start, count(*) as days_in_period from calendar group by 1, 2

),

-- Each KPI's periods with at least one covered day, and which days those are.
kpi_periods as (

    select
        kpi_days.kpi_id,
        kpi_grains.grain,
        calendar.period_start,
        calendar.period_end,
        calendar.period_label,
        count(*) as days_covered,
        min(kpi_days.date) as covered_from,
        max(kpi_days.date) as covered_to

    from kpi_days
    inner join kpi_grains
        on kpi_grains.kpi_id = kpi_days.kpi_id
    inner join calendar
        on calendar.date = kpi_days.date
        and calendar.grain = kpi_grains.grain
    group by 1, 2, 3, 4, 5

),

summed_by_period as (

    select
        kpi_measures_daily.kpi_id,
        kpi_grains.grain,
        calendar.period_start,
        kpi_measures_daily.segment_type,
        kpi_measures_daily.segment,
        sum(kpi_measures_daily.numerator) as numerator,
        sum(kpi_measures_daily.denominator) as denominator,
        count(distinct kpi_measures_daily.date) as days_with_data

    from kpi_measures_daily
    inner join kpi_days
        on kpi_days.kpi_id = kpi_measures_daily.kpi_id
        and kpi_days.date = kpi_measures_daily.date
    inner join kpi_grains
        on kpi_grains.kpi_id = kpi_measures_daily.kpi_id
    inner join calendar
        on calendar.date = kpi_measures_daily.date
        and calendar.grain = kpi_grains.grain
    group by 1, 2, 3, 4, 5

),

-- Every covered period has its whole ('all') row: traffic but no quote request is a 0.
period_segments as (

    select kpi_id, grain, period_start, segment_type, segment from summed_by_period
    union
    select kpi_id, grain, period_start, 'all' as segment_type, 'all' as segment from kpi_periods

),

-- Flags of the sources feeding the KPI, on the days it is judged on (a set, in order).
period_flags as (

    select
        flagged.kpi_id,
        flagged.grain,
        flagged.period_start,
        string_agg(flagged.quality_flag, ',' order by flagged.quality_flag) as quality_flags

    from (
        select distinct
            kpi_days.kpi_id,
            kpi_grains.grain,
            calendar.period_start,
            quality_flags_daily.quality_flag
        from kpi_days
        inner join kpi_sources
            on kpi_sources.kpi_id = kpi_days.kpi_id
        inner join quality_flags_daily
            on quality_flags_daily.source_id = kpi_sources.source_id
            and quality_flags_daily.date = kpi_days.date
        inner join kpi_grains
            on kpi_grains.kpi_id = kpi_days.kpi_id
        inner join calendar
            on calendar.date = kpi_days.date
            and calendar.grain = kpi_grains.grain
    ) as flagged
    group by 1, 2, 3

),

measured_values as (

    select
        kpi_periods.kpi_id,
        kpi_periods.grain,
        kpi_periods.period_start,
        kpi_periods.period_end,
        kpi_periods.period_label,
        period_segments.segment_type,
        period_segments.segment,
        coalesce(summed_by_period.numerator, 0) as numerator,
        case when kpis.denominator_measure is not null then coalesce(summed_by_period.denominator, 0) end as denominator,
        case
            when kpis.denominator_measure is null then coalesce(summed_by_period.numerator, 0)
            when summed_by_period.denominator > 0 then summed_by_period.numerator / summed_by_period.denominator
        end as value,
        coalesce(summed_by_period.days_with_data, 0) as days_with_data,
        kpi_periods.days_covered < period_days.days_in_period as is_partial,
        kpi_periods.covered_to as as_of_date,
        period_flags.quality_flags,
        kpi_periods.covered_from,
        kpi_periods.covered_to,
        kpi_periods.days_covered

    from period_segments
    inner join kpi_periods
        on kpi_periods.kpi_id = period_segments.kpi_id
        and kpi_periods.grain = period_segments.grain
        and kpi_periods.period_start = period_segments.period_start
    inner join kpis
        on kpis.kpi_id = kpi_periods.kpi_id
        and kpis.kind <> 'users'
    inner join period_days
        on period_days.grain = kpi_periods.grain
        and period_days.period_start = kpi_periods.period_start
    left join summed_by_period
        on summed_by_period.kpi_id = period_segments.kpi_id
        and summed_by_period.grain = period_segments.grain
        and summed_by_period.period_start = period_segments.period_start
        and summed_by_period.segment_type = period_segments.segment_type
        and summed_by_period.segment = period_segments.segment
    left join period_flags
        on period_flags.kpi_id = kpi_periods.kpi_id
        and period_flags.grain = kpi_periods.grain
        and period_flags.period_start = kpi_periods.period_start

),

-- Users are not additive across days: each period's figure is GA4's own count from the
-- period's start to through_day (one request per period), summed only across properties.
-- Their flags are the set of every property's flags.
users_flags as (

    select distinct
        period_users.kpi_id,
        period_users.grain,
        period_users.period_start,
        period_users.quality_flags
    from period_users
    where period_users.quality_flags is not null

),

users_by_period as (

    select
        period_users.kpi_id,
        period_users.grain,
        period_users.period_start,
        period_users.period_end,
        period_users.segment_type,
        period_users.segment,
        min(period_users.through_day) as through_day,
        sum(period_users.users) as users

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

users_covered as (

    select
        users_by_period.kpi_id,
        users_by_period.grain,
        users_by_period.period_start,
        users_by_period.segment_type,
        users_by_period.segment,
        count(kpi_days.date) as days_covered,
        min(kpi_days.date) as covered_from,
        max(kpi_days.date) as covered_to,
        count(users_row_days.date) as days_with_data

    from users_by_period
    inner join kpi_days
        on kpi_days.kpi_id = users_by_period.kpi_id
        and kpi_days.date >= users_by_period.period_start
        and kpi_days.date <= users_by_period.through_day
    left join users_row_days
        on users_row_days.kpi_id = kpi_days.kpi_id
        and users_row_days.date = kpi_days.date
    group by 1, 2, 3, 4, 5

),

-- Each property's flags are a comma list: the period's set names each flag once, in order.
users_period_flags as (

    select
        kpi_id,
        grain,
        period_start,
        nullif(concat_ws(
            ',',
            case when bool_or(strpos(',' || quality_flags || ',', ',other_row,') > 0) then 'other_row' end,
            case when bool_or(strpos(',' || quality_flags || ',', ',sampled,') > 0) then 'sampled' end,
            case when bool_or(strpos(',' || quality_flags || ',', ',thresholded,') > 0) then 'thresholded' end,
            case when bool_or(strpos(',' || quality_flags || ',', ',timezone_mismatch,') > 0) then 'timezone_mismatch' end,
            case when bool_or(strpos(',' || quality_flags || ',', ',truncated,') > 0) then 'truncated' end
        ), '') as quality_flags

    from users_flags
    group by 1, 2, 3

),

users_values as (

    select
        users_by_period.kpi_id,
        users_by_period.grain,
        users_by_period.period_start,
        users_by_period.period_end,
        calendar_labels.period_label,
        users_by_period.segment_type,
        users_by_period.segment,
        cast(users_by_period.users as double) as numerator,
        cast(null as double) as denominator,
        cast(users_by_period.users as double) as value,
        coalesce(users_covered.days_with_data, 0) as days_with_data,
        (
            coalesce(users_covered.days_covered, 0) < period_days.days_in_period
            or users_by_period.through_day < users_by_period.period_end
        ) as is_partial,
        coalesce(users_covered.covered_to, users_by_period.through_day) as as_of_date,
        users_period_flags.quality_flags,
        coalesce(users_covered.covered_from, users_by_period.period_start) as covered_from,
        coalesce(users_covered.covered_to, users_by_period.through_day) as covered_to,
        coalesce(users_covered.days_covered, 0) as days_covered

    from users_by_period
    inner join (select distinct grain, period_start, period_label from calendar) as calendar_labels
        on calendar_labels.grain = users_by_period.grain
        and calendar_labels.period_start = users_by_period.period_start
    inner join period_days
        on period_days.grain = users_by_period.grain
        and period_days.period_start = users_by_period.period_start
    left join users_covered
        on users_covered.kpi_id = users_by_period.kpi_id
        and users_covered.grain = users_by_period.grain
        and users_covered.period_start = users_by_period.period_start
        and users_covered.segment_type = users_by_period.segment_type
        and users_covered.segment = users_by_period.segment
    left join users_period_flags
        on users_period_flags.kpi_id = users_by_period.kpi_id
        and users_period_flags.grain = users_by_period.grain
        and users_period_flags.period_start = users_by_period.period_start

),

final as (

    select * from measured_values
    union all
    select * from users_values

)

select * from final
