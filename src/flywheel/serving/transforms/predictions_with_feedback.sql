-- description: every prediction, with its latest feedback (outcome null while none came)
-- inputs: predictions=dev.flywheel/prediction, feedback=dev.flywheel/feedback
-- materialized: table
-- expect: unique(prediction_id)
-- The latest feedback of a prediction is the one of the latest event time, then the one
-- the log received last, then the greatest event id: the same pick on every replay.
with latest as (
    select prediction_id, outcome, event_time, source,
           count(*) over (partition by prediction_id) as feedback_count
    from feedback
    qualify row_number() over (partition by prediction_id
                               order by event_time desc, ingested_at desc, event_id desc) = 1
)
select p.event_id as prediction_id, p.event_time as predicted_at, p.deployment, p.member,
       p.model, p.model_version, p.entity_key, p.entity_id, p."features", p."outputs",
       p.latency_ms, p.shadow, p.defaulted,
       l.outcome, l.event_time as feedback_at, l.source as feedback_source,
       coalesce(l.feedback_count, 0) as feedback_count
from predictions p
left join latest l on l.prediction_id = p.event_id
