-- grain: one row per email campaign and measure (sent, delivered, unique opens and clicks, unsubscribes, bounces)
-- keys: source_id, date, source, medium, campaign, device, measure_id
-- materialized: incremental
-- partition_by: date
-- description: Email campaign totals as additive measures in the shape of int_web_analytics__measures, on the campaign's send day; source is the campaign's utm_source (else the platform), medium is email, campaign its utm_campaign (else its name), so tactic rules match them like site traffic.
with

campaigns as (

    select * from {{ ref('stg_email__campaigns') }} where {{ incremental_days('date') }}

),

utm_tagged as (

    select
        source_id,
        date,
        coalesce(utm_source, platform) as source,
        'email' as medium,
        coalesce(utm_campaign, campaign_name_lower, campaign_id) as campaign,
        '(not set)' as device,
        emails_sent,
        delivered,
        unique_opens,
        unique_clicks,
        unsubscribes,
        bounces

    from campaigns

),

final as (

    select source_id, date, source, medium, campaign, device, 'emails_sent' as measure_id, cast(emails_sent as double) as value from utm_tagged
    union all
    select source_id, date, source, medium, campaign, device, 'emails_delivered' as measure_id, cast(delivered as double) as value from utm_tagged
    union all
    select source_id, date, source, medium, campaign, device, 'email_unique_opens' as measure_id, cast(unique_opens as double) as value from utm_tagged
    union all
    select source_id, date, source, medium, campaign, device, 'email_unique_clicks' as measure_id, cast(unique_clicks as double) as value from utm_tagged
    union all
    select source_id, date, source, medium, campaign, device, 'email_unsubscribes' as measure_id, cast(unsubscribes as double) as value from utm_tagged
    union all
    select source_id, date, source, medium, campaign, device, 'email_bounces' as measure_id, cast(bounces as double) as value from utm_tagged

)

select * from final
