-- grain: one row per KPI and day every source of the KPI covered
-- keys: kpi_id, date
-- materialized: incremental
-- partition_by: date
-- description: The days a KPI can be judged on: each source feeding its measures read the day whole (a day with rows was read, whatever the log says). A period is complete when all its days are here; one source's late start leaves only its own KPIs partial.
with

source_days as (

    select source_id, date from {{ ref('stg_loading__source_days') }} where {{ incremental_days('date') }}
    union
    select distinct source_id, date from {{ ref('int_measures_unioned') }} where {{ incremental_days('date') }}

),

kpi_sources as (

    select * from {{ source('plan', 'kpi_sources') }}

),

sources_per_kpi as (

    select kpi_id, count(*) as sources from kpi_sources group by 1

),

covered as (

    select
        kpi_sources.kpi_id,
        source_days.date,
        count(distinct source_days.source_id) as sources_covering

    from kpi_sources
    inner join source_days
        on source_days.source_id = kpi_sources.source_id
    group by 1, 2

),

final as (

    select covered.kpi_id, covered.date

    from covered
    inner join sources_per_kpi
        on sources_per_kpi.kpi_id = covered.kpi_id
    where covered.sources_covering = sources_per_kpi.sources

)

select * from final
