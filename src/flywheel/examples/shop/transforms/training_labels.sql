-- The label of every cart add: was the product bought in the same session within 30
-- minutes? Timed at the cart add, which is when the model predicts. A cart add whose 30
-- minutes have not passed yet (judged against the newest event in the log, not the
-- clock, so a replay gives the same labels) has no label yet and is left out.
-- inputs: com.flywheel.shop/add_to_cart, com.flywheel.shop/purchase
-- order_by: event_time
-- expect: unique(cart_id)
with seen as (
    select greatest((select max(event_time) from add_to_cart),
                    (select max(event_time) from purchase)) as upto
),
bought as (
    select distinct c.event_id
    from add_to_cart c join purchase p
      on p.session_id = c.session_id and p.product_id = c.product_id
     and p.event_time > c.event_time
     and p.event_time <= c.event_time + interval 30 minute
)
select c.event_id as cart_id, c.user_id, c.product_id, c.session_id,
       b.event_id is not null as label,
       c.event_time
from add_to_cart c left join bought b on b.event_id = c.event_id, seen
where c.event_time + interval 30 minute <= seen.upto
