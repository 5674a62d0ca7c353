-- grain: one row per source and day the loading layer read completely
-- keys: source_id, date
-- description: Days each source covered (read whole: a CSV file spanning the day, a GA4 day pulled, an email window re-read), whether or not they held rows; only sources that feed the KPIs.
with

source as (

    select * from {{ source('raw', 'source_days') }}

),

active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis

),

renamed as (

    select
        source_id,
        cast(date as date) as date,
        cast(row_count as bigint) as row_count

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
