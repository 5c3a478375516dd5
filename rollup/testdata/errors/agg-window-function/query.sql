SELECT k, row_number() AS n FROM t GROUP BY k
