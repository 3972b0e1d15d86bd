with

source as (

    select * from {{ source('nycflights', 'airlines') }}

),

renamed as (

    select
        carrier as carrier_code,
        name as airline_name
    from source

)

select * from renamed
