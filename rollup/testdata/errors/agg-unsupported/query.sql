SELECT k, array_agg(x) AS xs FROM t GROUP BY k
