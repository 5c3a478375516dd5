SELECT k, approx_quantile(x, 99) AS p99 FROM t GROUP BY k
