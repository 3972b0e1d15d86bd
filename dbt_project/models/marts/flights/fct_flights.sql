{{
    config(
        materialized='incremental',
        unique_key='flight_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

-- One row per flight. Incremental: each run rebuilds the months present in the newest loads.
with

flights as (

    select * from {{ ref('int_flights_joined_to_weather') }}

    {% if is_incremental() %}
        where departure_date >= (
            select coalesce(max(already_built.departure_date), '1900-01-01'::date) - 31
            from {{ this }} as already_built
        )
    {% endif %}

),

final as (

    select
        flight_id,
        departure_date,
        carrier_code,
        flight_number,
        tail_number,
        origin_airport_code,
        destination_airport_code,
        scheduled_departure_at,
        departure_delay_minutes,
        arrival_delay_minutes,
        distance_miles,
        is_cancelled,
        weather_condition,
        date_trunc('month', departure_date)::date as departure_month,
        not is_cancelled and arrival_delay_minutes <= 15 as is_on_time,
        not is_cancelled and departure_delay_minutes > 15 as is_departure_delayed
    from flights

)

select * from final
