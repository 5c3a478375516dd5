package dburl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/dburl"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in     string
		kind   dburl.Kind
		target string // what to open; the error's message when kind is Unknown
	}{
		{"sqlite:events.db", dburl.SQLite, "events.db"},
		{"sqlite:/tmp/x", dburl.SQLite, "/tmp/x"},
		{"events.db", dburl.SQLite, "events.db"},
		{"/var/lib/mr/a=b.db", dburl.SQLite, "/var/lib/mr/a=b.db"},
		{`C:\data\events.db`, dburl.SQLite, `C:\data\events.db`},
		{"postgres://u:pw@h/db", dburl.Postgres, "postgres://u:pw@h/db"},
		{"postgresql://h/db", dburl.Postgres, "postgresql://h/db"},
		{"host=/tmp dbname=app", dburl.Postgres, "host=/tmp dbname=app"},
		{"  dbname = app.db", dburl.Postgres, "  dbname = app.db"},
		{"user=mr password=pw", dburl.Postgres, "user=mr password=pw"},
		{"", dburl.Postgres, ""},
		{"sqlite:", dburl.Unknown, "sqlite: names no file: " + dburl.Forms},
		{"mysql://u:secret@h/db.db", dburl.Unknown, `unsupported scheme "mysql": ` + dburl.Forms},
		{"my secret://u@h/db", dburl.Unknown, "unsupported URL: " + dburl.Forms},
		{"secret=1.db", dburl.SQLite, "secret=1.db"},
		{"u:secret@h", dburl.Unknown, "not a database URL: " + dburl.Forms},
		{"events.sqlite", dburl.Unknown, "not a database URL: " + dburl.Forms},
	} {
		kind, target, err := dburl.Parse(tt.in)
		if kind == dburl.Unknown {
			if err == nil {
				t.Errorf("Parse(%q) = %v, %q without an error", tt.in, kind, target)
				continue
			}
			target = err.Error()
		} else if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
		}
		if kind != tt.kind || target != tt.target {
			t.Errorf("Parse(%q) = %v, %q; want %v, %q", tt.in, kind, target, tt.kind, tt.target)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && !strings.HasPrefix(tt.in, "secret") {
			t.Errorf("Parse(%q) error quotes the string: %v", tt.in, err)
		}
	}
}

func TestSQLiteName(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"/tmp/a.db":          "sqlite:/tmp/a.db",
		"/tmp/x/../a.db":     "sqlite:/tmp/a.db",
		"/tmp//a.db":         "sqlite:/tmp/a.db",
		"a.db":               "sqlite:" + filepath.Join(wd, "a.db"),
		"./sub/../a.db":      "sqlite:" + filepath.Join(wd, "a.db"),
		"../" + "mr/../a.db": "sqlite:" + filepath.Join(filepath.Dir(wd), "a.db"),
	} {
		if got := dburl.SQLiteName(in); got != want {
			t.Errorf("SQLiteName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	open := func(s string) (string, error) {
		return dburl.Open(s, "pkg",
			func(path string) (string, error) { return "sqlite " + path, nil },
			func(dsn string) (string, error) { return "postgres " + dsn, nil })
	}
	for in, want := range map[string]string{
		"sqlite:a.db":   "sqlite a.db",
		"a.db":          "sqlite a.db",
		"host=/tmp":     "postgres host=/tmp",
		"postgres://h/": "postgres postgres://h/",
		"u:secret@h":    "pkg: not a database URL: " + dburl.Forms,
	} {
		got, err := open(in)
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("Open(%q) = %q, want %q", in, got, want)
		}
	}
}
