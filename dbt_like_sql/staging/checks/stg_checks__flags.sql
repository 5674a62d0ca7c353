-- grain: one row per source, day and data check that failed on its rows
-- keys: source_id, date, check_name
-- description: Source days a data check flagged (a volume anomaly, a quarantine burst...), as quality flags named check:<check>; only sources that feed the KPIs.
with

source as (

    select * from {{ source('raw', 'check_flags') }}

),

active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis

),

renamed as (

    select
        source_id,
        cast(date as date) as date,
        check_name,
        severity

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
