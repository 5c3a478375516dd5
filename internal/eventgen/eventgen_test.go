package eventgen_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/eventgen"
)

func collect(cfg eventgen.Config) []eventgen.Event {
	return slices.Collect(cfg.All())
}

func isObject(s string) bool {
	var m map[string]any
	return strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &m) == nil
}

func TestConfig_All(t *testing.T) {
	t.Parallel()

	t.Run("SameSeedSameRows", func(t *testing.T) {
		t.Parallel()
		cfg := eventgen.Config{Rows: 5000, Seed: 7, PoisonRate: 0.01, NullPayloadRate: 0.01, GapEvery: 10}
		a, b := collect(cfg), collect(cfg)
		if !slices.EqualFunc(a, b, func(x, y eventgen.Event) bool { return x == y && x.TS.Equal(y.TS) }) {
			t.Fatal("two runs of the same Config differ")
		}
		c := collect(eventgen.Config{Rows: 5000, Seed: 8, PoisonRate: 0.01, NullPayloadRate: 0.01, GapEvery: 10})
		if slices.EqualFunc(a, c, func(x, y eventgen.Event) bool { return x == y }) {
			t.Fatal("seeds 7 and 8 give the same rows")
		}
	})

	t.Run("PoisonShare", func(t *testing.T) {
		t.Parallel()
		const rows, rate, nullRate = 100_000, 0.02, 0.005
		var poison, null int
		for e := range (eventgen.Config{Rows: rows, Seed: 1, PoisonRate: rate, NullPayloadRate: nullRate}).All() {
			if e.Poison == (e.Payload.Valid && isObject(e.Payload.String)) {
				t.Fatalf("row %d: Poison=%v for payload %q (valid %v)", e.ID, e.Poison, e.Payload.String, e.Payload.Valid)
			}
			if e.Poison {
				poison++
			}
			if !e.Payload.Valid {
				null++
			}
		}
		// Binomial: within 5 standard deviations.
		check := func(what string, got int, p float64) {
			t.Helper()
			want := p * rows
			if sd := math.Sqrt(rows * p * (1 - p)); math.Abs(float64(got)-want) > 5*sd {
				t.Errorf("%s: %d rows, want about %.0f", what, got, want)
			}
		}
		check("poison", poison, rate+nullRate)
		check("NULL", null, nullRate)
	})

	t.Run("NoNullByDefault", func(t *testing.T) {
		t.Parallel()
		for e := range (eventgen.Config{Rows: 20_000, Seed: 3, PoisonRate: 0.5}).All() {
			if !e.Payload.Valid {
				t.Fatalf("row %d has a NULL payload without NullPayloadRate", e.ID)
			}
		}
	})

	t.Run("IDsIncreaseWithGaps", func(t *testing.T) {
		t.Parallel()
		for _, gapEvery := range []int64{0, 1, 7} {
			var prev int64
			gaps := 0
			for e := range (eventgen.Config{Rows: 1000, Seed: 2, GapEvery: gapEvery}).All() {
				if e.ID <= prev {
					t.Fatalf("GapEvery %d: id %d after %d", gapEvery, e.ID, prev)
				}
				if e.ID > prev+1 {
					gaps++
				}
				prev = e.ID
			}
			if want := 0; gapEvery == 0 && gaps != want {
				t.Errorf("GapEvery 0: %d gaps, want none", gaps)
			}
			if gapEvery > 0 && int64(gaps) != (1000-1)/gapEvery {
				t.Errorf("GapEvery %d: %d gaps, want %d", gapEvery, gaps, (1000-1)/gapEvery)
			}
		}
	})

	t.Run("Shape", func(t *testing.T) {
		t.Parallel()
		cfg := eventgen.Config{Rows: 50_000, Seed: 4}.WithDefaults()
		end := cfg.Start.AddDate(0, 0, cfg.Days)
		hot, localDayDiffers := 0, 0
		for e := range cfg.All() {
			if e.AccountID < 1 || e.AccountID > int64(cfg.Accounts) {
				t.Fatalf("row %d: account %d out of range", e.ID, e.AccountID)
			}
			if e.AccountID <= int64(cfg.HotAccounts) {
				hot++
			}
			if e.TS.Before(cfg.Start) || !e.TS.Before(end) {
				t.Fatalf("row %d: ts %s outside [%s, %s)", e.ID, e.TSText(), cfg.Start, end)
			}
			parsed, err := time.Parse(time.RFC3339, e.TSText())
			if err != nil || !parsed.Equal(e.TS) {
				t.Fatalf("row %d: ts text %q does not round-trip: %v", e.ID, e.TSText(), err)
			}
			if e.TS.Format(time.DateOnly) != e.TS.UTC().Format(time.DateOnly) {
				localDayDiffers++
			}
		}
		if share := float64(hot) / float64(cfg.Rows); share < 0.2 {
			t.Errorf("hot accounts have %.1f%% of the rows, want a large share", 100*share)
		}
		if share := float64(localDayDiffers) / float64(cfg.Rows); share < 0.1 {
			t.Errorf("local day differs from the UTC day in %.1f%% of the rows, want many", 100*share)
		}
	})
}

func TestSeedSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	cfg := eventgen.Config{Rows: 1234, Seed: 5, PoisonRate: 0.05, NullPayloadRate: 0.01, GapEvery: 50}

	if ok, err := eventgen.Seeded(ctx, path, cfg); err != nil || ok {
		t.Fatalf("Seeded before seeding = %v, %v; want false, nil", ok, err)
	}
	if err := eventgen.SeedSQLite(ctx, path, cfg); err != nil {
		t.Fatal(err)
	}
	// Seeding again replaces the table rather than adding to it.
	if err := eventgen.SeedSQLite(ctx, path, cfg); err != nil {
		t.Fatal(err)
	}
	if ok, err := eventgen.Seeded(ctx, path, cfg); err != nil || !ok {
		t.Fatalf("Seeded after seeding = %v, %v; want true, nil", ok, err)
	}
	other := cfg
	other.Rows++
	if ok, err := eventgen.Seeded(ctx, path, other); err != nil || ok {
		t.Fatalf("Seeded with another Config = %v, %v; want false, nil", ok, err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, account_id, ts, category, amount_cents, payload FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []eventgen.Event
	for rows.Next() {
		var e eventgen.Event
		var ts string
		if err := rows.Scan(&e.ID, &e.AccountID, &ts, &e.Category, &e.AmountCents, &e.Payload); err != nil {
			t.Fatal(err)
		}
		if e.TS, err = time.Parse(time.RFC3339, ts); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := collect(cfg)
	if len(got) != len(want) {
		t.Fatalf("table has %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.AccountID != w.AccountID || g.TSText() != w.TSText() || g.Category != w.Category ||
			g.AmountCents != w.AmountCents || g.Payload != w.Payload {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}

	// SQLite's date() turns an RFC 3339 text with an offset into the UTC
	// day, as the tests of daily_rollup rely on.
	var mismatches int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE date(ts) IS NULL`).Scan(&mismatches); err != nil || mismatches != 0 {
		t.Fatalf("date(ts) is NULL for %d rows (%v)", mismatches, err)
	}
	for _, e := range want[:200] {
		var day string
		if err := db.QueryRowContext(ctx, `SELECT date(ts) FROM events WHERE id = ?`, e.ID).Scan(&day); err != nil {
			t.Fatal(err)
		}
		if wantDay := e.TS.UTC().Format(time.DateOnly); day != wantDay {
			t.Fatalf("row %d: date(%q) = %s, want the UTC day %s", e.ID, e.TSText(), day, wantDay)
		}
	}
}
