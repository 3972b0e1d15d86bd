-- The newest committed load of each pipeline and interval (what readers and on-call look at).
create or replace view dataops.latest_loads as
select distinct on (pipeline, interval_start)
    pipeline,
    target,
    interval_start,
    interval_end,
    batch,
    rows,
    finished_at,
    duration_ms
from dataops.load_audit
order by pipeline, interval_start, finished_at desc;
