with

source as (

    select * from {{ source('crm', 'customers') }}

),

renamed as (

    select
        customer_id,
        name as customer_name,
        signed_up_at,
        upper(country) as country_code
    from source

)

select * from renamed
