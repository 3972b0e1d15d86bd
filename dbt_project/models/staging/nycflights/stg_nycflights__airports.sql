with

source as (

    select * from {{ source('nycflights', 'airports') }}

),

renamed as (

    select
        faa as airport_code,
        name as airport_name,
        lat as latitude,
        lon as longitude,
        alt as altitude_feet,
        tz as utc_offset_hours,
        tzone as timezone_name
    from source

)

select * from renamed
