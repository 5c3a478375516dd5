package mapreduce_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

// Clicks counts clicks per page: the job of the package documentation.
var Clicks = mapreduce.Job[string, int64]{
	Name:   "clicks_per_page",
	Input:  mapreduce.Input{Table: "clicks", Columns: []string{"page"}},
	Output: mapreduce.Output{Table: "page_clicks"},
	Key:    mapreduce.Columns[string]("page"),
	Value:  mapreduce.Columns[int64]("clicks"),
	Map: func(ctx context.Context, row mapreduce.Row, emit func(string, int64)) error {
		emit(row.String(0), 1)
		return nil
	},
	Combine: mapreduce.AddInt64,
}

// Write a job, then run it over a table of an SQLite file into another
// table of the same file.
func Example() {
	dir, err := os.MkdirTemp("", "mr-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE clicks (id INTEGER PRIMARY KEY, page TEXT);
		INSERT INTO clicks (page) VALUES ('/'), ('/docs'), ('/'), ('/pricing'), ('/'), ('/docs')`); err != nil {
		log.Fatal(err)
	}

	src, err := sources.OpenSQLite(path)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	sink, err := sinks.OpenSQLite(path)
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = filepath.Join(dir, ".mr")
	cfg.Logger = discardLogger
	s, err := mapreduce.Run(context.Background(), &Clicks, src, sink, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d rows, %d failed, %d groups\n", s.Processed, s.Failed, s.Groups)

	rows, err := db.Query(`SELECT page, clicks FROM page_clicks ORDER BY clicks DESC, page`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var page string
		var clicks int64
		rows.Scan(&page, &clicks)
		fmt.Println(page, clicks)
	}
	// Output:
	// 6 rows, 0 failed, 3 groups
	// / 3
	// /docs 2
	// /pricing 1
}
