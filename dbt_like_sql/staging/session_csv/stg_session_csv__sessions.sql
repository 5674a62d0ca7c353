-- grain: one row per session (file and line)
-- keys: source_id, file, line
-- description: Session-level CSV rows, renamed and cast; UTM values lower-cased for matching.
with

source as (

    select * from {{ source('raw', 'session_csv_rows') }}

),

-- Only sources the plan declares and lets feed the KPIs count: rows of a removed source,
-- or of the kind traffic_source did not choose, stay in raw but are never read here.
active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'session_csvs'

),

renamed as (

    select
        source_id,
        cast(date as date) as date,
        lower(source) as source,
        lower(medium) as medium,
        lower(campaign) as campaign,
        audience,
        converted,
        engaged,
        file,
        line

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
