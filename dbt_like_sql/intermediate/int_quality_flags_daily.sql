-- grain: one row per source, date and quality flag
-- keys: source_id, date, quality_flag
-- materialized: incremental
-- partition_by: date
-- description: Every reason to hold a source's day: GA4's own flags (sampled, thresholded...) and the data checks that failed on its rows (check:<name>).
with

ga4_flags as (

    select source_id, date, quality_flag from {{ ref('int_ga4__quality_flags_daily') }} where {{ incremental_days('date') }}

),

check_flags as (

    select source_id, date, 'check:' || check_name as quality_flag from {{ ref('stg_checks__flags') }} where {{ incremental_days('date') }}

),

final as (

    select source_id, date, quality_flag from ga4_flags
    union
    select source_id, date, quality_flag from check_flags

)

select * from final
