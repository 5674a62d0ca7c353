-- grain: one row per date and quality flag raised by any GA4 report of that day
-- keys: date, quality_flag
-- description: Days whose GA4 data was sampled, thresholded, folded into (other), truncated or in another time zone.
with

extract_log as (

    select * from {{ ref('stg_ga4__extract_log') }}

),

flags as (

    select date, 'sampled' as quality_flag from extract_log where sampled
    union all
    select date, 'thresholded' as quality_flag from extract_log where subject_to_thresholding
    union all
    select date, 'other_row' as quality_flag from extract_log where data_loss_from_other_row
    union all
    select date, 'truncated' as quality_flag from extract_log where truncation_reasons is not null
    union all
    select date, 'timezone_mismatch' as quality_flag from extract_log where timezone_mismatch

),

final as (

    select distinct date, quality_flag from flags

)

select * from final
