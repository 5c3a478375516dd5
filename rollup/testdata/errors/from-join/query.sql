SELECT o.k, count(*) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY 1
