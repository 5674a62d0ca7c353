-- grain: one row per email source and campaign, dated by its send day (plan timezone)
-- keys: source_id, campaign_id
-- description: Email campaign totals from Mailchimp and Klaviyo, renamed and cast; UTM values lower-cased for matching.
with

source as (

    select * from {{ source('raw', 'email_campaigns') }}

),

-- Only sources the plan declares and lets feed the KPIs count: rows of a removed source,
-- or of the kind traffic_source did not choose, stay in raw but are never read here.
active_sources as (

    select source_id from {{ source('plan', 'sources') }}
    where feeds_kpis and source_kind = 'email'

),

renamed as (

    select
        source_id,
        cast(date as date) as date,
        platform,
        campaign_id,
        campaign_name,
        list_id,
        send_time,
        lower(nullif(trim(utm_source), '')) as utm_source,
        lower(nullif(trim(utm_campaign), '')) as utm_campaign,
        lower(nullif(trim(campaign_name), '')) as campaign_name_lower,
        cast(emails_sent as bigint) as emails_sent,
        cast(bounces as bigint) as bounces,
        cast(delivered as bigint) as delivered,
        cast(unique_opens as bigint) as unique_opens,
        cast(reported_unique_opens as bigint) as reported_unique_opens,
        cast(machine_unique_opens as bigint) as machine_unique_opens,
        machine_opens_excluded,
        cast(unique_clicks as bigint) as unique_clicks,
        cast(unsubscribes as bigint) as unsubscribes

    from source
    where source_id in (select source_id from active_sources)

)

select * from renamed
