package sources_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
)

// pair is a row as a compound cursor names it.
type pair struct{ cursor, tie int64 }

// compoundRows is how the compound tests fill a table: 1,500 rows, the
// first 1,000 at one order value, the next 200 at another, the rest one
// per value, with ids in no relation to that order. step spells one unit
// of the order column's type as SQL added to base.
func compoundRows(base, step string) string {
	return fmt.Sprintf(`INSERT INTO ev (ts, id, v)
		SELECT %s + (CASE WHEN g <= 1000 THEN 0 WHEN g <= 1200 THEN 1 ELSE g END) * %s, (g * 7919) %% 100003, 'v' || g
		FROM generate_series(1, 1500) AS g`, base, step)
}

// readPairs reads every partition of parts by src's chunks of chunk rows,
// streamed too where src streams, and returns the pairs and values read,
// in order.
func readPairs(t *testing.T, src mapreduce.TieSource, in mapreduce.Input, parts []partition.Range, chunk int, stream bool) ([]pair, []string) {
	t.Helper()
	var got []pair
	var vs []string
	b := mapreduce.NewBatch(in.Columns)
	take := func(b *mapreduce.Batch) error {
		if b.Len() > chunk {
			return fmt.Errorf("chunk of %d rows, limit %d", b.Len(), chunk)
		}
		for i := range b.Len() {
			row := b.Row(i)
			tie, ok := row.Tie()
			if !ok {
				return fmt.Errorf("row %d has no tie-breaker", i)
			}
			got = append(got, pair{row.Cursor(), tie})
			vs = append(vs, row.String(0))
		}
		return nil
	}
	for _, r := range parts {
		var err error
		if s, ok := src.(mapreduce.TieStreamer); ok && stream {
			err = s.StreamAfter(t.Context(), in, r, nil, chunk, b, take)
		} else {
			err = mapreduce.ReadChunksAfter(t.Context(), src, in, r, nil, chunk, b, take)
		}
		if err != nil {
			t.Fatalf("read %s: %v", r, err)
		}
	}
	return got, vs
}

// checkPairs checks that got is want, every row once, in (cursor, tie)
// order.
func checkPairs(t *testing.T, got, want []pair) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d is %v, want %v (the rows before it matched)", i, got[i], want[i])
		}
	}
}

func TestPostgres_CompoundCursor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		typ, base, step string
		micros          func(time.Time) int64 // the engine's cursor of a scanned value
	}{
		{"timestamptz", `timestamptz '2024-03-01 12:00:00.123456+00'`, `interval '1 second'`, time.Time.UnixMicro},
		{"timestamp", `timestamp '2024-03-01 12:00:00.000001'`, `interval '1 microsecond'`, time.Time.UnixMicro},
		{"date", `date '2024-03-01'`, `1`, func(d time.Time) int64 { return d.Unix() / 86400 }},
		{"integer", `1700000000`, `1`, nil},
	} {
		t.Run(strings.ToUpper(tt.typ[:1])+tt.typ[1:], func(t *testing.T) {
			t.Parallel()
			b := setupPostgres(t,
				`CREATE TABLE ev (ts `+tt.typ+` NOT NULL, id bigint NOT NULL, v text, UNIQUE (ts, id))`,
				compoundRows(tt.base, tt.step), `ANALYZE ev`)
			in := mapreduce.Input{Table: "ev", Cursor: "ts,id", Columns: []string{"v"}}
			rows, err := b.pool.Query(t.Context(), `SELECT ts, id FROM ev ORDER BY ts, id`)
			if err != nil {
				t.Fatal(err)
			}
			var want []pair
			for rows.Next() {
				var p pair
				if tt.micros == nil {
					var ts int64
					err = rows.Scan(&ts, &p.tie)
					p.cursor = ts
				} else {
					var ts time.Time
					err = rows.Scan(&ts, &p.tie)
					p.cursor = tt.micros(ts)
				}
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, p)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			info, err := b.src.Describe(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if info.Min != want[0].cursor || info.Max != want[len(want)-1].cursor {
				t.Fatalf("Describe: cursor bounds [%d, %d], want [%d, %d]", info.Min, info.Max, want[0].cursor, want[len(want)-1].cursor)
			}
			// Four partitions by Split: the 1,000 rows of the first value
			// fall in one of them, whatever their count.
			planned, err := b.src.Split(t.Context(), in, info, 4)
			if err != nil {
				t.Fatal(err)
			}
			var parts []partition.Range
			for _, p := range planned {
				parts = append(parts, p.Range)
			}
			for _, stream := range []bool{false, true} {
				got, vs := readPairs(t, b.src, in, parts, 7, stream)
				checkPairs(t, got, want)
				if !slices.Contains(vs, "v1") || !slices.Contains(vs, "v1500") {
					t.Errorf("stream %t: values %v… lack v1 or v1500", stream, vs[:3])
				}
			}

			// Resuming mid-value: after the 500th row of the first
			// value, exactly the rows after it.
			mid := want[499]
			r := partition.Through(mid.cursor, info.Max)
			var rest []pair
			batch := mapreduce.NewBatch(in.Columns)
			err = b.src.StreamAfter(t.Context(), in, r, &mid.tie, 7, batch, func(b *mapreduce.Batch) error {
				for i := range b.Len() {
					tie, _ := b.Row(i).Tie()
					rest = append(rest, pair{b.Row(i).Cursor(), tie})
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkPairs(t, rest, want[500:])
			batch.Reset()
			if err := b.src.ReadChunkAfter(t.Context(), in, r, &mid.tie, 3, batch); err != nil {
				t.Fatal(err)
			}
			tie, _ := batch.Row(0).Tie()
			if got := (pair{batch.Row(0).Cursor(), tie}); batch.Len() != 3 || got != want[500] {
				t.Errorf("ReadChunkAfter: %d rows from %v, want 3 from %v", batch.Len(), got, want[500])
			}
		})
	}
}

func TestPostgres_CompoundCursor_Refusals(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		create []string
		cursor string
		want   string // a part of the error
	}{
		{"NotUnique", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint NOT NULL, v text)`, `CREATE INDEX ON ev (ts, id)`}, "ts,id",
			`cursor column "ts,id" of table "ev" in %s must be unique: add a unique index on ("ts", "id"), or on "id" alone, or pick another --cursor`},
		{"PartialIndex", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint NOT NULL, v text)`, `CREATE UNIQUE INDEX ON ev (ts, id) WHERE id > 0`}, "ts,id",
			`must be unique`},
		{"UniqueID", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint PRIMARY KEY, v text)`}, "ts,id", ""},
		{"NullTS", []string{`CREATE TABLE ev (ts timestamptz, id bigint PRIMARY KEY, v text)`, `INSERT INTO ev VALUES (NULL, 1, 'a'), (now(), 2, 'b')`}, "ts,id",
			`cursor column "ts" of table "ev" in %s has 1 NULL values: fill them or pick another --cursor`},
		{"TextTS", []string{`CREATE TABLE ev (ts text NOT NULL, id bigint PRIMARY KEY, v text)`}, "ts, id",
			`cursor column "ts" of table "ev" in %s has type "text"; the order column of a compound cursor must be an integer, date, timestamp or timestamptz column (pick another --cursor)`},
		{"NullableTie", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint UNIQUE, v text)`}, "ts,id",
			`cursor column "id" of table "ev" in %s is the tie-breaker of the compound cursor "ts,id", which must be a NOT NULL integer column; it is bigint (pick another --cursor)`},
		{"Infinity", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint PRIMARY KEY, v text)`, `INSERT INTO ev VALUES ('infinity', 1, 'a')`}, "ts,id",
			`holds infinity`},
		{"ThreeColumns", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint PRIMARY KEY, v text)`}, "ts,id,v",
			`names 3 columns`},
		{"MissingTie", []string{`CREATE TABLE ev (ts timestamptz NOT NULL, id bigint PRIMARY KEY, v text)`}, "ts,nope",
			`column "nope" not found in table "ev"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupPostgres(t, tt.create...)
			_, err := b.src.Describe(t.Context(), mapreduce.Input{Table: "ev", Cursor: tt.cursor, Columns: []string{"v"}})
			want := tt.want
			if strings.Contains(want, "%s") {
				want = "sources: " + fmt.Sprintf(want, b.src)
			}
			switch {
			case want == "" && err != nil:
				t.Fatalf("Describe: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("Describe error:\ngot  %v\nwant %s", err, want)
			}
		})
	}
}

func TestSQLite_CompoundCursor(t *testing.T) {
	t.Parallel()
	var ins strings.Builder
	ins.WriteString(`INSERT INTO ev (ts, id, v) VALUES `)
	var want []pair
	for g := int64(1); g <= 1500; g++ {
		ts := 1700000000 + g
		switch {
		case g <= 1000:
			ts = 1700000000
		case g <= 1200:
			ts = 1700000001
		}
		id := g * 7919 % 100003
		if g > 1 {
			ins.WriteString(", ")
		}
		fmt.Fprintf(&ins, "(%d, %d, 'v%d')", ts, id, g)
		want = append(want, pair{ts, id})
	}
	slices.SortFunc(want, func(a, b pair) int {
		if a.cursor != b.cursor {
			return int(a.cursor - b.cursor)
		}
		return int(a.tie - b.tie)
	})
	src := openSQLite(t, createDB(t, `CREATE TABLE ev (ts INTEGER NOT NULL, id INTEGER NOT NULL, v TEXT, UNIQUE (ts, id))`, ins.String()))
	in := mapreduce.Input{Table: "ev", Cursor: "ts,id", Columns: []string{"v"}}
	info, err := src.Describe(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := partition.Split(info.Min, info.Max, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readPairs(t, src, in, parts, 7, false)
	checkPairs(t, got, want)

	for _, tt := range []struct {
		name, create, want string
	}{
		{"TextTS", `CREATE TABLE ev (ts TEXT NOT NULL, id INTEGER PRIMARY KEY, v TEXT)`, `on SQLite the order column of a compound cursor must be an integer column`},
		{"NotUnique", `CREATE TABLE ev (ts INTEGER NOT NULL, id INTEGER NOT NULL, v TEXT)`, `must be unique: add a unique index on ("ts", "id")`},
		{"NullableTie", `CREATE TABLE ev (ts INTEGER NOT NULL, id INTEGER UNIQUE, v TEXT)`, `must be a NOT NULL integer column`},
		{"RowidTie", `CREATE TABLE ev (ts INTEGER NOT NULL, id INTEGER PRIMARY KEY, v TEXT)`, ``},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := openSQLite(t, createDB(t, tt.create))
			_, err := src.Describe(t.Context(), in)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Describe: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Describe error:\ngot  %v\nwant …%s…", err, tt.want)
			}
		})
	}
}

// TestTieDecoder: the binary decoder turns a timestamptz and a date into
// the engine's cursor exactly, refuses infinity, and allocates nothing
// for the pair. It is not parallel: testing.AllocsPerRun refuses to run
// in a parallel test.
func TestTieDecoder(t *testing.T) {
	be := func(v uint64, n int) []byte {
		b := make([]byte, n)
		for i := range n {
			b[n-1-i] = byte(v >> (8 * i))
		}
		return b
	}
	id := be(42, 8)
	for _, tt := range []struct {
		name string
		oid  uint32
		raw  []byte
		want int64
		err  string
	}{
		// 2000-01-01 00:00:00.000001 UTC, a microsecond past PostgreSQL's epoch.
		{"Timestamptz", pgtype.TimestamptzOID, be(1, 8), 946_684_800_000_001, ""},
		{"TimestampBefore2000", pgtype.TimestampOID, be(uint64(1<<64-1), 8), 946_684_799_999_999, ""},
		{"Date", pgtype.DateOID, be(1, 4), 10_958, ""},
		{"Infinity", pgtype.TimestamptzOID, be(1<<63-1, 8), 0, `cursor column "ts" holds a timestamp with no microseconds since 1970`},
		{"DateInfinity", pgtype.DateOID, be(1<<31-1, 4), 0, `cursor column "ts" holds an infinite date`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			decode, err := sources.NewTieDecoder([]pgconn.FieldDescription{
				{Name: "ts", DataTypeOID: tt.oid, Format: pgtype.BinaryFormatCode},
				{Name: "id", DataTypeOID: pgtype.Int8OID, Format: pgtype.BinaryFormatCode},
			}, pgtype.NewMap())
			if err != nil {
				t.Fatal(err)
			}
			raw := [][]byte{tt.raw, id}
			b := mapreduce.NewBatch(nil)
			cursor, tie, err := decode(raw, b)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decode: %v, want …%s…", err, tt.err)
				}
				return
			}
			if err != nil || cursor != tt.want || tie != 42 {
				t.Fatalf("decode: (%d, %d), %v; want (%d, 42)", cursor, tie, err, tt.want)
			}
			if n := testing.AllocsPerRun(100, func() { b.Reset(); decode(raw, b) }); n != 0 {
				t.Errorf("decode allocates %v times per row, want 0", n)
			}
		})
	}
}
