SELECT
	customer_id,
	count(*) AS orders,
	array_agg(status) AS statuses
FROM orders
GROUP BY 1
