select
    country_code,
    count(*) as customers,
    min(signed_up_at) as first_signup_at
from {{ ref('stg_crm__customers') }}
group by country_code
