-- Departure delays at each NYC airport by month, split by the weather at departure.
-- Grain: one row per origin airport and departure month.
with

flights as (

    select * from {{ ref('fct_flights') }}

),

airports as (

    select * from {{ ref('stg_nycflights__airports') }}

),

monthly as (

    select
        origin_airport_code,
        departure_month,
        count(*) filter (where not is_cancelled) as departures,
        count(*) filter (where is_departure_delayed) as delayed_departures,
        count(*) filter (
            where is_departure_delayed and weather_condition in ('poor', 'fair')
        ) as delayed_in_bad_weather,
        count(*) filter (
            where is_departure_delayed and weather_condition in ('good', 'unknown')
        ) as delayed_in_good_weather,
        avg(departure_delay_minutes) filter (
            where is_departure_delayed
        ) as average_delay_when_delayed_minutes
    from flights
    group by origin_airport_code, departure_month

),

final as (

    select
        monthly.origin_airport_code,
        airports.airport_name,
        monthly.departure_month,
        monthly.departures,
        monthly.delayed_departures,
        monthly.delayed_in_bad_weather,
        monthly.delayed_in_good_weather,
        round(monthly.average_delay_when_delayed_minutes::numeric, 2)
            as average_delay_when_delayed_minutes
    from monthly
    left join airports on monthly.origin_airport_code = airports.airport_code

)

select * from final
