SELECT count(*) FROM t GROUP BY ()
