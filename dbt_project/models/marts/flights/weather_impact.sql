-- How the weather at departure relates to delays. Grain: one row per weather condition.
with

flights as (

    select * from {{ ref('fct_flights') }}

),

final as (

    select
        weather_condition,
        count(*) as scheduled_flights,
        count(*) filter (where is_cancelled) as cancelled_flights,
        round(
            (count(*) filter (where is_departure_delayed))::numeric
            / nullif(count(*) filter (where not is_cancelled), 0),
            4
        ) as departure_delay_rate,
        round(avg(departure_delay_minutes)::numeric, 2) as average_departure_delay_minutes
    from flights
    group by weather_condition

)

select * from final
