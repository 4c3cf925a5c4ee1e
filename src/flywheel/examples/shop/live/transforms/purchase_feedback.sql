-- The outcome of each prediction, from the shop's own events: the product scored was
-- bought by that user within 30 minutes (1), or those 30 minutes passed without it (0).
-- "Passed" is judged against the newest event in the log, not the clock, so a replay
-- derives the same outcomes. Log its rows as feedback with
-- flywheel.serving.derived_feedback.feedback_events (see README.md).
-- inputs: predictions=dev.flywheel/prediction, purchases=com.flywheel.shop/purchase
with seen as (
    select greatest((select max(event_time) from predictions),
                    (select max(event_time) from purchases)) as upto
),
scored as (
    select event_id as prediction_id, event_time,
           split_part(entity_id, ',', 1) as user_id,
           split_part(entity_id, ',', 2) as product_id
    from predictions
    where entity_key = 'user_id,product_id' and not shadow
),
converted as (
    select distinct s.prediction_id
    from scored s join purchases p
      on p.user_id = s.user_id and p.product_id = s.product_id
     and p.event_time between s.event_time and s.event_time + interval 30 minute
)
select s.prediction_id,
       (case when c.prediction_id is null then 0 else 1 end)::double as outcome,
       s.event_time + interval 30 minute as event_time
from scored s left join converted c on c.prediction_id = s.prediction_id, seen
where c.prediction_id is not null or s.event_time + interval 30 minute <= seen.upto
