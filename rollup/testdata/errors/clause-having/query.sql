SELECT customer_id, count(*) AS orders
FROM orders
GROUP BY 1 HAVING count(*) > 1
