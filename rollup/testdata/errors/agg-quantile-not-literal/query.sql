SELECT k, approx_quantile(x, q) AS p FROM t GROUP BY k
