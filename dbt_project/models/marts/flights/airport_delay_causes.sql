-- Departure delays at each NYC airport by month, split by the weather at departure.
-- Grain: one row per origin airport and departure month.
with

flights as (

    select * from {{ ref('fct_flights') }}

),

final as (

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
        round(
            avg(departure_delay_minutes) filter (where is_departure_delayed)::numeric, 2
        ) as average_delay_when_delayed_minutes
    from flights
    group by origin_airport_code, departure_month

)

select * from final
