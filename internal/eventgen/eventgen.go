// Package eventgen generates the rows of the events table that the demo,
// the tests and the benchmarks share:
//
//	events(id bigint primary key, account_id bigint, ts timestamptz,
//	       category text, amount_cents bigint, payload text)
//
// The rows are a pure function of Config: the same Config yields the same
// rows on every machine and every run (math/rand/v2's PCG, seeded from
// Config.Seed), so a test can recompute what it seeded and a benchmark can
// reuse a seeded file.
//
// The data is shaped to exercise the engine, not just to fill a table:
// ids increase with optional gaps, a few hot accounts get a large share of
// the rows, timestamps carry varied UTC offsets and cluster near UTC
// midnight (so the UTC-day rule of daily_rollup matters), and a share of
// payloads are poison: not a JSON object.
package eventgen

import (
	"database/sql"
	"encoding/json"
	"iter"
	"math/rand/v2"
	"strconv"
	"time"
)

// Version names the generator's algorithm. It is part of a seeded file's
// fingerprint (see Seeded), so a file seeded by an older generator is
// seeded anew; change it whenever the rows for a given Config change.
const Version = 1

// Config describes the rows to generate. The zero value of a field means
// its default (see WithDefaults), except Seed, PoisonRate, NullPayloadRate
// and GapEvery, whose zero values mean what they say.
type Config struct {
	// Rows is the number of rows.
	Rows int64 `json:"rows"`
	// Seed seeds the generator.
	Seed uint64 `json:"seed"`
	// PoisonRate is the share of rows whose payload is not a JSON object:
	// truncated JSON, arrays, scalars, plain text or an empty string.
	PoisonRate float64 `json:"poison_rate"`
	// NullPayloadRate is the share of rows whose payload is NULL. They are
	// poison too, counted apart from PoisonRate.
	NullPayloadRate float64 `json:"null_payload_rate"`
	// Accounts is the number of distinct account ids, 1..Accounts.
	// Default 10,000.
	Accounts int `json:"accounts"`
	// HotAccounts is the number of accounts (ids 1..HotAccounts) that share
	// HotShare of all rows between them. Default 10.
	HotAccounts int `json:"hot_accounts"`
	// Categories is the number of distinct categories. Default 20.
	Categories int `json:"categories"`
	// Days is the number of UTC days the timestamps spread over, from
	// Start. Default 90.
	Days int `json:"days"`
	// Start is the first UTC day. Default 2026-01-01.
	Start time.Time `json:"start"`
	// GapEvery leaves a gap of 1 to 10 unused ids after every GapEvery-th
	// row; 0 leaves none.
	GapEvery int64 `json:"gap_every"`
}

// Defaults of Config.
const (
	DefaultAccounts    = 10_000
	DefaultHotAccounts = 10
	DefaultCategories  = 20
	DefaultDays        = 90
)

// DefaultStart is the default first day.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Shape of the data, fixed so that a Config stays small.
const (
	// hotShare of the rows go to the hot accounts: a skew that makes some
	// combine keys far heavier than others.
	hotShare = 0.25
	// nearMidnight of the rows fall within midnightWindow of a UTC
	// midnight, where the local date and the UTC date of ts differ most.
	nearMidnight   = 0.2
	midnightWindow = 90 * 60 // seconds
	// favoriteShare of an account's rows fall in one of its favorites
	// categories, so that an account-day has a few categories, not all.
	favoriteShare = 0.8
	favorites     = 3
	// refundShare of the amounts are negative.
	refundShare = 0.02
)

// WithDefaults returns c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.Accounts <= 0 {
		c.Accounts = DefaultAccounts
	}
	if c.HotAccounts <= 0 {
		c.HotAccounts = min(DefaultHotAccounts, c.Accounts)
	}
	c.HotAccounts = min(c.HotAccounts, c.Accounts)
	if c.Categories <= 0 {
		c.Categories = DefaultCategories
	}
	if c.Days <= 0 {
		c.Days = DefaultDays
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC().Truncate(24 * time.Hour)
	return c
}

// fingerprint identifies the rows c generates.
func (c Config) fingerprint() string {
	data, err := json.Marshal(struct {
		Version int    `json:"version"`
		Config  Config `json:"config"`
	}{Version, c.WithDefaults()})
	if err != nil {
		panic(err) // a Config always marshals
	}
	return string(data)
}

// Event is one row of the events table.
type Event struct {
	ID        int64
	AccountID int64
	// TS is in a fixed zone with the offset written to the table; the
	// UTC day of the instant is what daily_rollup keys on.
	TS          time.Time
	Category    string
	AmountCents int64
	Payload     sql.NullString
	// Poison is set when Payload is NULL or not a JSON object, that is when
	// daily_rollup fails the row.
	Poison bool
}

// TSText is TS as stored: RFC 3339 with the offset, e.g.
// "2026-03-04T23:30:00-05:00".
func (e Event) TSText() string { return e.TS.Format(time.RFC3339) }

// zones are the offsets timestamps are written in: whole, half and
// quarter hours on both sides of UTC, so that a local date is often not
// the UTC date.
var zones = func() []*time.Location {
	offsets := []int{-10 * 60, -8 * 60, -5 * 60, -3*60 - 30, 0, 60, 5*60 + 30, 5*60 + 45, 9 * 60, 13 * 60}
	locs := make([]*time.Location, len(offsets))
	for i, m := range offsets {
		locs[i] = time.FixedZone("", m*60)
	}
	return locs
}()

var categoryNames = []string{
	"books", "games", "music", "movies", "grocery", "travel", "fuel", "dining",
	"fashion", "sports", "toys", "garden", "pharmacy", "electronics", "home",
	"beauty", "pets", "office", "auto", "gifts",
}

// Category returns the name of category i (0-based).
func Category(i int) string {
	if i < len(categoryNames) {
		return categoryNames[i]
	}
	return "category_" + strconv.Itoa(i)
}

var channels = []string{"web", "ios", "android", "pos"}

// All returns the rows of c in increasing id order. Each call starts the
// sequence anew.
func (c Config) All() iter.Seq[Event] {
	c = c.WithDefaults()
	return func(yield func(Event) bool) {
		rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
		cats := make([]string, c.Categories)
		for i := range cats {
			cats[i] = Category(i)
		}
		start := c.Start.Unix()
		var buf []byte
		id := int64(1)
		for n := int64(1); n <= c.Rows; n++ {
			e := Event{ID: id}
			id++
			if c.GapEvery > 0 && n%c.GapEvery == 0 {
				id += 1 + rng.Int64N(10)
			}

			if rng.Float64() < hotShare {
				e.AccountID = 1 + rng.Int64N(int64(c.HotAccounts))
			} else {
				e.AccountID = 1 + rng.Int64N(int64(c.Accounts))
			}

			day := rng.Int64N(int64(c.Days))
			var sec int64
			if rng.Float64() < nearMidnight {
				sec = rng.Int64N(2 * midnightWindow)
				if sec >= midnightWindow {
					sec = 24*60*60 - 2*midnightWindow + sec // just before midnight
				}
			} else {
				sec = rng.Int64N(24 * 60 * 60)
			}
			e.TS = time.Unix(start+day*24*60*60+sec, 0).In(zones[rng.IntN(len(zones))])

			if rng.Float64() < favoriteShare {
				e.Category = cats[favorite(e.AccountID, rng.IntN(favorites), c.Categories)]
			} else {
				e.Category = cats[rng.IntN(c.Categories)]
			}

			e.AmountCents = 1 + int64(rng.ExpFloat64()*2500)
			if rng.Float64() < refundShare {
				e.AmountCents = -e.AmountCents
			}

			buf = appendObject(buf[:0], rng)
			switch p := rng.Float64(); {
			case p < c.NullPayloadRate:
				e.Poison = true
			case p < c.NullPayloadRate+c.PoisonRate:
				e.Poison = true
				e.Payload = sql.NullString{String: poison(buf, rng), Valid: true}
			default:
				e.Payload = sql.NullString{String: string(buf), Valid: true}
			}
			if !yield(e) {
				return
			}
		}
	}
}

// favorite returns the i-th favorite category of an account.
func favorite(account int64, i, categories int) int {
	h := uint64(account)*0x9e3779b97f4a7c15 + uint64(i)*0xbf58476d1ce4e5b9
	return int((h >> 33) % uint64(categories))
}

// appendObject appends a JSON object payload of about 80 bytes.
func appendObject(b []byte, rng *rand.Rand) []byte {
	b = append(b, `{"session":"`...)
	b = strconv.AppendUint(b, rng.Uint64(), 16)
	b = append(b, `","items":`...)
	b = strconv.AppendInt(b, 1+rng.Int64N(12), 10)
	b = append(b, `,"channel":"`...)
	b = append(b, channels[rng.IntN(len(channels))]...)
	b = append(b, `","v":1}`...)
	return b
}

// poison returns a payload that is not a JSON object, derived from the
// valid object obj: truncated JSON, an array, a scalar, plain text or empty.
func poison(obj []byte, rng *rand.Rand) string {
	switch rng.IntN(6) {
	case 0: // a proper prefix of an object is never valid JSON
		return string(obj[:1+rng.IntN(len(obj)-1)])
	case 1:
		return "[1,2]"
	case 2:
		return "null"
	case 3:
		return `"` + strconv.Itoa(rng.IntN(1000)) + `"`
	case 4:
		return "not json at all"
	default:
		return ""
	}
}
