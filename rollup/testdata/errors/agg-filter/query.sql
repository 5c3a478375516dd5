SELECT k, count(*) FILTER (WHERE paid) AS paid FROM t GROUP BY k
