SELECT k, CASE WHEN count(*) > 9 THEN 'many' END AS c FROM t GROUP BY k
