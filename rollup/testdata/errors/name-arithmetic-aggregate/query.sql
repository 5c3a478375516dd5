SELECT id3, max(v1) - min(v2) FROM x GROUP BY id3
