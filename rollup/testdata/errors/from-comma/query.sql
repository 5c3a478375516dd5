SELECT count(*) FROM orders, customers
