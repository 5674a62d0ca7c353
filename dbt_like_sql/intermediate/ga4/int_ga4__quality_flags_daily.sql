-- grain: one row per GA4 source, date and quality flag raised by any of its reports that day
-- keys: source_id, date, quality_flag
-- materialized: incremental
-- partition_by: date
-- description: Days whose GA4 data was sampled, thresholded, folded into (other), truncated or in another time zone, per property: a flag reaches only the KPIs that property feeds.
with

extract_log as (

    select * from {{ ref('stg_ga4__extract_log') }} where {{ incremental_days('date') }}

),

flags as (

    select source_id, date, 'sampled' as quality_flag from extract_log where sampled
    union all
    select source_id, date, 'thresholded' as quality_flag from extract_log where subject_to_thresholding
    union all
    select source_id, date, 'other_row' as quality_flag from extract_log where data_loss_from_other_row
    union all
    select source_id, date, 'truncated' as quality_flag from extract_log where truncation_reasons is not null
    union all
    select source_id, date, 'timezone_mismatch' as quality_flag from extract_log where timezone_mismatch

),

final as (

    select distinct source_id, date, quality_flag from flags

)

select * from final
