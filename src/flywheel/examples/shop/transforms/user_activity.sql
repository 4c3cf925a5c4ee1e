-- Each user's activity over the hour, day and week before each of their events. A row per
-- event, so that the point-in-time join picks, for a cart add at time t, the counts as
-- they stood at t: never a purchase that came after it.
-- inputs: com.flywheel.shop/page_view, com.flywheel.shop/add_to_cart, com.flywheel.shop/purchase
-- order_by: user_id, event_time
-- expect: not_null(user_id)
with events as (
    select user_id, event_id, event_time, 0 as cart, 0 as bought from page_view
    union all
    select user_id, event_id, event_time, 1, 0 from add_to_cart
    union all
    select user_id, event_id, event_time, 0, 1 from purchase
)
select user_id, event_id, event_time,
       count(*) over h as events_1h,
       count(*) over d as events_24h,
       count(*) over w as events_7d,
       sum(cart) over h as carts_1h,
       sum(cart) over d as carts_24h,
       sum(cart) over w as carts_7d,
       sum(bought) over h as purchases_1h,
       sum(bought) over d as purchases_24h,
       sum(bought) over w as purchases_7d
from events
window h as (partition by user_id order by event_time
             range between interval 1 hour preceding and current row),
       d as (partition by user_id order by event_time
             range between interval 24 hour preceding and current row),
       w as (partition by user_id order by event_time
             range between interval 7 day preceding and current row)
