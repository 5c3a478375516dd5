package sources

import (
	"context"

	"github.com/mrengine/mr/internal/dburl"
	"github.com/mrengine/mr/mapreduce"
)

// Open returns the source a URL names (the --source flag):
//
//	sqlite:PATH, or a PATH ending in .db    an existing SQLite database
//	postgres://… or postgresql://…, or      a PostgreSQL database (OpenPostgres)
//	a key=value DSN (host=… dbname=…)
//
// ctx bounds connecting to a database server. The source is an io.Closer;
// close it when done. Its errors never quote url, which may hold a
// password.
func Open(ctx context.Context, url string) (mapreduce.Source, error) {
	return dburl.Open(url, "sources",
		func(path string) (mapreduce.Source, error) { return source(OpenSQLite(path)) },
		func(dsn string) (mapreduce.Source, error) { return source(OpenPostgres(ctx, dsn)) })
}

// source returns src as a Source, or nil if err is set: never a nil
// pointer in a non-nil interface.
func source[S mapreduce.Source](src S, err error) (mapreduce.Source, error) {
	if err != nil {
		return nil, err
	}
	return src, nil
}
