with

source as (

    select * from {{ source('nycflights', 'planes') }}

),

renamed as (

    select
        tailnum as tail_number,
        year as year_built,
        type as aircraft_type,
        manufacturer,
        model,
        engines as engine_count,
        seats as seat_count,
        engine as engine_type
    from source

)

select * from renamed
