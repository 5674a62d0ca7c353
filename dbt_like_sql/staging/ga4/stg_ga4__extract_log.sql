-- grain: one row per source, date and report
-- keys: source_id, date, report
-- description: How each GA4 day was extracted: row count, sampling, thresholding, time zone, quota.
with

source as (

    select * from {{ source('raw', 'ga4_extract_log') }}

),

-- Only sources the plan declares and lets feed the KPIs count: rows of a removed source,
-- or of the kind traffic_source did not choose, stay in raw but are never read here.
active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'ga4'

),

renamed as (

    select
        source_id,
        cast(date as date) as date,
        report,
        property_id,
        row_count,
        sampled,
        sampling_rate,
        subject_to_thresholding,
        data_loss_from_other_row,
        truncation_reasons,
        time_zone,
        timezone_mismatch,
        quality_flags

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
