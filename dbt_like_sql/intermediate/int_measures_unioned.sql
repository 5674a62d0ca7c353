-- grain: one row per source, source row and measure
-- keys: source_id, date, source, medium, campaign, device, audience, measure_id
-- materialized: incremental
-- partition_by: date
-- description: Additive measures of every source in one shape; each source adds one union branch.
with

web_analytics_measures as (

    select source_id, date, source, medium, campaign, device, '(not set)' as audience, measure_id, value
    from {{ ref('int_web_analytics__measures') }}
    where {{ incremental_days('date') }}

),

email_measures as (

    select source_id, date, source, medium, campaign, device, '(not set)' as audience, measure_id, value
    from {{ ref('int_email__measures') }}
    where {{ incremental_days('date') }}

),

session_csv_measures as (

    select source_id, date, source, medium, campaign, device, audience, measure_id, value
    from {{ ref('int_session_csv__measures') }}
    where {{ incremental_days('date') }}

),

final as (

    select * from web_analytics_measures
    union all
    select * from email_measures
    union all
    select * from session_csv_measures

)

select * from final
