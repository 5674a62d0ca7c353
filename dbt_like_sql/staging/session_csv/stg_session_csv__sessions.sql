-- grain: one row per session (file and line)
-- keys: source_id, file, line
-- description: Session-level CSV rows, renamed and cast; UTM values lower-cased for matching.
with

source as (

    select * from {{ source('raw', 'session_csv_rows') }}

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
        engaged

    from source

)

select * from renamed
