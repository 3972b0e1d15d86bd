-- One row per flight, with the weather observed at its origin in its scheduled departure hour
-- and a coarse weather condition used by the marts.
with

flights as (

    select * from {{ ref('stg_nycflights__flights') }}

),

weather as (

    select * from {{ ref('stg_nycflights__weather') }}

),

joined as (

    select
        flights.*,
        weather.visibility_miles,
        weather.precipitation_inches,
        weather.wind_speed_mph,
        weather.wind_gust_mph,
        case
            when weather.airport_code is null then 'unknown'
            when weather.visibility_miles < 3 or weather.precipitation_inches >= 0.1 then 'poor'
            when weather.precipitation_inches > 0 or weather.wind_speed_mph >= 25 then 'fair'
            else 'good'
        end as weather_condition
    from flights
    left join weather
        on
            flights.origin_airport_code = weather.airport_code
            and flights.scheduled_hour_at = weather.observed_hour_at

)

select * from joined
