-- How much each product is looked at and put in carts, over the day and the week before
-- each of its events, and the price it was shown at then (prices change: see the drift).
-- inputs: com.flywheel.shop/page_view, com.flywheel.shop/add_to_cart
-- order_by: product_id, event_time
-- expect: not_null(product_id)
with events as (
    select product_id, event_id, event_time, price, 1 as viewed, 0 as cart from page_view
    union all
    select product_id, event_id, event_time, price, 0, 1 from add_to_cart
)
select product_id, event_id, event_time, price,
       sum(viewed) over d as product_views_24h,
       sum(viewed) over w as product_views_7d,
       sum(cart) over w as product_carts_7d
from events
window d as (partition by product_id order by event_time
             range between interval 24 hour preceding and current row),
       w as (partition by product_id order by event_time
             range between interval 7 day preceding and current row)
