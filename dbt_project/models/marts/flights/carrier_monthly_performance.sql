-- On-time performance by carrier and month. Grain: one row per carrier and departure month.
with

flights as (

    select * from {{ ref('fct_flights') }}

),

airlines as (

    select * from {{ ref('stg_nycflights__airlines') }}

),

monthly as (

    select
        carrier_code,
        departure_month,
        count(*) as scheduled_flights,
        count(*) filter (where is_cancelled) as cancelled_flights,
        count(*) filter (where is_on_time) as on_time_flights,
        avg(arrival_delay_minutes) as average_arrival_delay_minutes
    from flights
    group by carrier_code, departure_month

),

final as (

    select
        monthly.carrier_code,
        airlines.airline_name,
        monthly.departure_month,
        monthly.scheduled_flights,
        monthly.cancelled_flights,
        monthly.on_time_flights,
        round(
            monthly.on_time_flights::numeric
            / nullif(monthly.scheduled_flights - monthly.cancelled_flights, 0),
            4
        ) as on_time_rate,
        round(monthly.average_arrival_delay_minutes::numeric, 2) as average_arrival_delay_minutes
    from monthly
    left join airlines on monthly.carrier_code = airlines.carrier_code

)

select * from final
