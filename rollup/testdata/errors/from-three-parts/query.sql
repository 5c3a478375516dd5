SELECT count(*) FROM db.public.orders
