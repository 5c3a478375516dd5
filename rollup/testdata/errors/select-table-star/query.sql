SELECT t.*, count(*) FROM t GROUP BY 1
