SELECT id6, max_n(v3, 2) AS largest2_v3 FROM x GROUP BY id6
