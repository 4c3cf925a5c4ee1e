-- One row per session, timed at its start. Only what is known when a session starts
-- (where the visitor came from, on which device) is a feature; the counts are for
-- analysis, since they include what happened later in the session. Models are served
-- numbers, so the source and device are also flags; a source nobody planned for (a new
-- partner) is `from_other`, which is what the drift monitor will see move.
-- inputs: com.flywheel.shop/page_view, com.flywheel.shop/add_to_cart, com.flywheel.shop/purchase
-- order_by: user_id, event_time
-- expect: unique(session_id)
-- expect: not_null(traffic_source)
with views as (
    select session_id, user_id,
           arg_min(traffic_source, event_time) as traffic_source,
           arg_min(device, event_time) as device,
           count(*) as pages,
           min(event_time) as event_time
    from page_view
    group by session_id, user_id
),
carts as (select session_id, count(*) as carts from add_to_cart group by session_id),
orders as (select session_id, count(*) as purchases from purchase group by session_id)
select v.session_id, v.user_id, v.traffic_source, v.device,
       (v.traffic_source = 'search')::int as from_search,
       (v.traffic_source = 'social')::int as from_social,
       (v.traffic_source = 'email')::int as from_email,
       (v.traffic_source = 'direct')::int as from_direct,
       (v.traffic_source not in ('search', 'social', 'email', 'direct'))::int as from_other,
       (v.device = 'mobile')::int as on_mobile,
       (v.device = 'tablet')::int as on_tablet,
       v.pages,
       coalesce(c.carts, 0) as carts, coalesce(o.purchases, 0) as purchases, v.event_time
from views v
left join carts c using (session_id)
left join orders o using (session_id)
