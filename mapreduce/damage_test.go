package mapreduce_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
)

// This file damages run state between the phases of a run, as a disk, an
// operator or a bug would, and requires the next run to notice and heal
// it: the output ends equal to the SQL GROUP BY over the source, the dead
// letters to the poison rows, and only the damaged partitions are mapped
// again.

// damageRows is the fixture: ids with gaps, 41 groups (so that every
// partition has keys in every bucket, whatever the hash seed), and poison
// rows (10 among them, next to the good row 11).
func damageRows() mapreducetest.Table {
	tab := mapreducetest.Table{Name: "rows", Columns: []mapreducetest.Column{
		{Name: "id", Type: "bigint primary key"},
		{Name: "grp", Type: "text"},
		{Name: "amount", Type: "bigint"},
		{Name: "kind", Type: "text"},
	}}
	for id := int64(1); id <= 400; id++ {
		if id%7 == 0 {
			continue
		}
		kind := "ok"
		if id == 10 || id%29 == 0 {
			kind = "poison"
		}
		tab.Rows = append(tab.Rows, []any{id, fmt.Sprintf("g%02d", id%41), id*3 - 100, kind})
	}
	return tab
}

// poisonIDs are the cursors of damageRows' poison rows.
func poisonIDs() []int64 {
	var ids []int64
	for _, row := range damageRows().Rows {
		if row[3] == "poison" {
			ids = append(ids, row[0].(int64))
		}
	}
	return ids
}

// damageTest is one run of sumJob over damageRows whose state a test
// damages between attempts.
type damageTest struct {
	h    *mapreducetest.Harness
	cfg  mapreduce.Config
	logs *syncBuffer
	run  string
}

// syncBuffer collects log lines from the run's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newDamageTest(t *testing.T, opts mapreducetest.Options) *damageTest {
	t.Helper()
	d := &damageTest{h: mapreducetest.New(t, opts), cfg: mapreducetest.Config(t), logs: &syncBuffer{}}
	d.h.Load(t, damageRows())
	d.cfg.ChunkSize, d.cfg.Workers = 25, 1 // one worker: buckets are applied in order
	d.cfg.Logger = slog.New(slog.NewTextHandler(d.logs, nil))
	return d
}

// failingApply is the harness's sink with every Apply failing: a run over
// it stops once every partition is mapped, before any bucket is applied.
type failingApply struct{ mapreduce.Replacer }

var errApply = errors.New("apply refused by the test")

func (failingApply) Apply(context.Context, mapreduce.OutputTable, string, int, mapreduce.OutputRows) error {
	return errApply
}

// stopBeforeReduce maps every partition and applies no bucket.
func (d *damageTest) stopBeforeReduce(t *testing.T) {
	t.Helper()
	s, err := mapreduce.Run(context.Background(), sumJob(t), d.h.Source(), failingApply{d.h.Sink().(mapreduce.Replacer)}, d.cfg)
	if !errors.Is(err, errApply) {
		t.Fatalf("run that cannot apply returned %v", err)
	}
	d.run = s.RunID
}

// stopMidMap stops at the third commit of partition 0 (the first the one
// worker maps), which leaves it two commits into its range.
func (d *damageTest) stopMidMap(t *testing.T) {
	t.Helper()
	var hits int
	ctx := crashpoint.WithHook(context.Background(), func(name string) {
		if name == crashpoint.MapSpilled {
			if hits++; hits == 3 {
				panic("stop in the map phase")
			}
		}
	})
	s, err := mapreduce.Run(ctx, sumJob(t), d.h.Source(), d.h.Sink(), d.cfg)
	var p *mapreduce.PanicError
	if !errors.As(err, &p) {
		t.Fatalf("run stopped in the map phase returned %v", err)
	}
	d.run = s.RunID
	if cp := d.inspect(t).Checkpoints[0]; cp == nil || cp.Done || cp.Seq != 2 {
		t.Fatalf("partition 0 has checkpoint %+v, want two commits", cp)
	}
}

// stopAfterBucket maps every partition, applies bucket 0 and stops.
func (d *damageTest) stopAfterBucket(t *testing.T) {
	t.Helper()
	ctx := crashpoint.WithHook(context.Background(), func(name string) {
		if name == crashpoint.BucketApplied {
			panic("stop after the first bucket")
		}
	})
	s, err := mapreduce.Run(ctx, sumJob(t), d.h.Source(), d.h.Sink(), d.cfg)
	var p *mapreduce.PanicError
	if !errors.As(err, &p) {
		t.Fatalf("run stopped after a bucket returned %v", err)
	}
	d.run = s.RunID
	if ri := d.inspect(t); len(ri.BucketsDone) != 0 {
		t.Fatalf("done markers %v, want none", ri.BucketsDone)
	}
}

func (d *damageTest) inspect(t *testing.T) *mapreduce.RunInfo {
	t.Helper()
	ri, err := mapreduce.Inspect(context.Background(), d.cfg, d.run)
	if err != nil {
		t.Fatal(err)
	}
	return ri
}

// finish runs to the end and checks the output against the SQL truth and
// the dead letters against the poison rows.
func (d *damageTest) finish(t *testing.T) mapreduce.Summary {
	t.Helper()
	s, err := mapreduce.Run(context.Background(), sumJob(t), d.h.Source(), d.h.Sink(), d.cfg)
	if err != nil {
		t.Fatalf("run after the damage: %v\nlog:\n%s", err, d.logs)
	}
	want := d.h.Query(t, "SELECT grp, CAST(sum(amount) AS bigint) FROM rows WHERE kind <> 'poison' GROUP BY grp ORDER BY grp")
	got := d.h.Query(t, "SELECT grp, total FROM sums ORDER BY grp")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("output after the damage\n got %v\nwant %v", got, want)
	}
	if got, want := runtestDeadLetters(t, d.cfg, s.RunID), poisonIDs(); !slices.Equal(got, want) {
		t.Errorf("dead letters %v, want %v", got, want)
	}
	return s
}

func runtestDeadLetters(t *testing.T, cfg mapreduce.Config, run string) []int64 {
	t.Helper()
	letters, err := mapreduce.DeadLetters(context.Background(), cfg, run, mapreduce.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var cursors []int64
	for _, l := range letters {
		cursors = append(cursors, l.Cursor)
	}
	slices.Sort(cursors)
	return cursors
}

// path is the file rel of the run's state directory.
func (d *damageTest) path(rel string) string {
	return filepath.Join(d.cfg.Workdir, d.run, filepath.FromSlash(rel))
}

// edit rewrites the state file rel with change applied to its JSON
// document; with reseal, it seals the result again, as a bug in mr could,
// so that only the checks against the plan stand between it and a wrong
// result.
func (d *damageTest) edit(t *testing.T, rel string, reseal bool, change func(string) string) {
	t.Helper()
	data, err := os.ReadFile(d.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.LastIndexByte(bytes.TrimSuffix(data, []byte("\n")), '\n') + 1
	body, sealLine := string(data[:cut]), string(data[cut:])
	changed := change(body)
	if changed == body {
		t.Fatalf("the change left %s as it was", rel)
	}
	if reseal {
		sealLine = fmt.Sprintf("{\"xxh64\":\"%016x\"}\n", xxhash.Sum64String(changed))
	}
	if err := os.WriteFile(d.path(rel), []byte(changed+sealLine), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFirst replaces the first match of pattern in s with what repl
// makes of the match's first group.
func replaceFirst(s, pattern string, repl func(string) string) string {
	re := regexp.MustCompile(pattern)
	m := re.FindStringSubmatchIndex(s)
	if m == nil {
		return s
	}
	return s[:m[2]] + repl(s[m[2]:m[3]]) + s[m[3]:]
}

// flipDigit changes the second digit of a number (the first of a one-digit
// one), as a flipped bit in a digit's low bits does.
func flipDigit(n string) string {
	i := min(1, len(n)-1)
	return n[:i] + string('0'+(n[i]-'0'+1)%10) + n[i+1:]
}

func addTo(n string, delta int64) string {
	v, _ := strconv.ParseInt(n, 10, 64)
	return strconv.FormatInt(v+delta, 10)
}

// stage is where the first run of a damage test stops.
type stage int

const (
	midMap       stage = iota // partition 0 committed twice, the others not begun
	beforeReduce              // every partition mapped, no bucket applied
	afterBucket               // bucket 0 applied, no done marker written
	finished
)

// TestRun_HealsDamagedState damages one piece of state per case, then
// runs again: each ends exact, having mapped again only the partitions
// that the damage touched.
func TestRun_HealsDamagedState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// stage is where the first run stops.
		stage  stage
		damage func(t *testing.T, d *damageTest)
		healed int // partitions mapped again
		log    string
	}{
		{"CheckpointNextDigit", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0001.json", false, func(s string) string { return replaceFirst(s, `"next": (\d+)`, flipDigit) })
		}, 1, "partition 1: checkpoint damaged"},
		{"CheckpointNextDigitMidMap", midMap, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0000.json", false, func(s string) string { return replaceFirst(s, `"next": (\d+)`, flipDigit) })
		}, 1, "partition 0: checkpoint damaged"},
		{"CheckpointNextPastRange", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0001.json", true, func(s string) string {
				return replaceFirst(s, `"next": (\d+)`, func(n string) string { return addTo(n, 1000) })
			})
		}, 1, "outside its range"},
		{"CheckpointBucketDigit", afterBucket, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0002.json", false, func(s string) string {
				return replaceFirst(s, `"bucket": (\d+)`, func(b string) string { return strconv.Itoa((int(b[0]-'0') + 1) % 3) })
			})
		}, 1, "partition 2: checkpoint damaged"},
		{"CheckpointBucketOutOfPlan", afterBucket, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0002.json", true, func(s string) string { return replaceFirst(s, `"bucket": (\d+)`, func(string) string { return "7" }) })
		}, 1, "the plan has 3 buckets"},
		{"CheckpointRangeHi", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0000.json", false, func(s string) string {
				return replaceFirst(s, `"hi": (\d+)`, func(n string) string { return addTo(n, -10) })
			})
		}, 1, "partition 0: checkpoint damaged"},
		{"CheckpointRangeHiResealed", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0000.json", true, func(s string) string {
				return replaceFirst(s, `"hi": (\d+)`, func(n string) string { return addTo(n, -10) })
			})
		}, 1, "has range"},
		{"CheckpointKeyFlipped", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "checkpoints/p0001.json", false, func(s string) string {
				return replaceFirst(s, `"key": "[^"]*/p000(1)-`, func(string) string { return "0" })
			})
		}, 1, "partition 1: checkpoint damaged"},
		{"CheckpointKeyOfAnotherPartition", beforeReduce, func(t *testing.T, d *damageTest) {
			// A checkpoint that names partition 0's file instead of its own:
			// the cleanup must neither keep its own file as committed nor,
			// since partition 0's checkpoint is sound, delete that one.
			d.edit(t, "checkpoints/p0001.json", true, func(s string) string {
				return replaceFirst(s, `"key": "[^"]*/p000(1)-`, func(string) string { return "0" })
			})
		}, 1, "which is not one of bucket"},
		{"PlanPartitionHi", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "plan.json", false, func(s string) string {
				return replaceFirst(s, `"hi": (\d+)`, func(n string) string { return addTo(n, -5) })
			})
		}, 0, "plan damaged; planned the run again"},
		{"PlanPartitionLoResealed", beforeReduce, func(t *testing.T, d *damageTest) {
			d.edit(t, "plan.json", true, func(s string) string {
				return replaceFirst(s, `"partitions": \[\s*\{\s*"lo": (\d+)`, func(n string) string { return addTo(n, 3) })
			})
		}, 0, "does not begin where"},
		{"PlanUnreadable", afterBucket, func(t *testing.T, d *damageTest) {
			if err := os.WriteFile(d.path("plan.json"), []byte("{\"format\": 3, \"run_i"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, 0, "plan damaged; planned the run again"},
		{"ShuffleFileDeleted", afterBucket, func(t *testing.T, d *damageTest) {
			d.removeFile(t, 1, false)
		}, 1, "partition 1: shuffle file damaged"},
		{"ShuffleFileFlipped", afterBucket, func(t *testing.T, d *damageTest) {
			d.flipFileByte(t, 1, false)
		}, 1, "checksum"},
		{"ShuffleFilesOfTwoPartitions", beforeReduce, func(t *testing.T, d *damageTest) {
			d.flipFileByte(t, 0, false)
			d.removeFile(t, 2, false)
		}, 2, "partition 2: shuffle file damaged"},
		{"ShuffleFileOfAppliedBucket", afterBucket, func(t *testing.T, d *damageTest) {
			d.removeFile(t, 1, true) // bucket 0 is applied: its files are not read again
		}, 0, ""},
		{"DeadLettersDeleted", beforeReduce, func(t *testing.T, d *damageTest) {
			d.removeDeadLetters(t)
		}, 1, "it was removed outside mr; re-mapping it"},
		{"DeadLetterCursorDigit", afterBucket, func(t *testing.T, d *damageTest) {
			d.editDeadLetters(t, func(s string) string { return strings.Replace(s, `"cursor":10,`, `"cursor":11,`, 1) })
		}, 1, "it was changed outside mr; re-mapping it"},
		{"DoneMarker", finished, func(t *testing.T, d *damageTest) {
			d.edit(t, "done/b0000", false, func(s string) string { return strings.Replace(s, `"bucket": 0`, `"bucket": 1`, 1) })
		}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newDamageTest(t, mapreducetest.Options{})
			switch tc.stage {
			case midMap:
				d.stopMidMap(t)
			case beforeReduce:
				d.stopBeforeReduce(t)
			case afterBucket:
				d.stopAfterBucket(t)
			case finished:
				d.run = d.finish(t).RunID
			}
			before := d.shuffleFiles(t)
			tc.damage(t, d)
			s := d.finish(t)
			if s.PartitionsHealed != tc.healed {
				t.Errorf("healed %d partitions, want %d\nlog:\n%s", s.PartitionsHealed, tc.healed, d.logs)
			}
			if !strings.Contains(d.logs.String(), tc.log) {
				t.Errorf("log does not say %q:\n%s", tc.log, d.logs)
			}
			if tc.healed == 0 && s.Read != 0 {
				t.Errorf("read %d rows again, want none", s.Read)
			}
			ri := d.inspect(t)
			if len(ri.BucketsDone) != 3 || len(ri.Damaged) != 0 || ri.State() != mapreduce.StateDone {
				t.Errorf("after the run: state %s, buckets done %v, damage %v", ri.State(), ri.BucketsDone, ri.Damaged)
			}
			// The cleanup of the run that found the damage deleted no
			// file of a sound partition (partition 0 in every case that
			// does not damage it).
			if tc.name == "CheckpointKeyOfAnotherPartition" {
				for _, f := range before {
					if strings.Contains(f, "/p0000-") {
						if _, err := os.Stat(f); err != nil {
							t.Errorf("the cleanup removed partition 0's committed file: %v", err)
						}
					}
				}
			}
		})
	}
}

// shuffleFiles lists the run's shuffle files.
func (d *damageTest) shuffleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(d.path("shuffle/b*/*.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// fileOf returns the first committed shuffle file of partition part in
// bucket 0 (the one stopAfterBucket applies) or, without inApplied, in
// another bucket.
func (d *damageTest) fileOf(t *testing.T, part int, inApplied bool) string {
	t.Helper()
	cp := d.inspect(t).Checkpoints[part]
	for _, f := range cp.Files {
		if (f.Bucket == 0) == inApplied {
			return filepath.Join(d.cfg.Workdir, filepath.FromSlash(f.Key))
		}
	}
	t.Fatalf("partition %d has no file to damage (in bucket 0: %t)", part, inApplied)
	return ""
}

func (d *damageTest) removeFile(t *testing.T, part int, inApplied bool) {
	t.Helper()
	if err := os.Remove(d.fileOf(t, part, inApplied)); err != nil {
		t.Fatal(err)
	}
}

func (d *damageTest) flipFileByte(t *testing.T, part int, inApplied bool) {
	t.Helper()
	path := d.fileOf(t, part, inApplied)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deadLetterFile returns the path of the dead-letter file holding
// cursor 10, in partition 0.
func (d *damageTest) deadLetterFile(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(d.path("dlq/p0000-*.jsonl"))
	for _, f := range files {
		if data, _ := os.ReadFile(f); bytes.Contains(data, []byte(`"cursor":10,`)) {
			return f
		}
	}
	t.Fatalf("no dead-letter file of partition 0 holds cursor 10: %v", files)
	return ""
}

// checkDeadLettersRefused checks that listing and replaying the dead
// letters of the damaged run are clear errors.
func (d *damageTest) checkDeadLettersRefused(t *testing.T) {
	t.Helper()
	_, err := mapreduce.DeadLetters(context.Background(), d.cfg, d.run, mapreduce.DeadLetterFilter{})
	if !errors.Is(err, mapreduce.ErrDamaged) || !strings.Contains(err.Error(), "run the same mr run command again to heal it") {
		t.Errorf("listing damaged dead letters = %v, want ErrDamaged saying how to heal", err)
	}
	_, err = mapreduce.Replay(context.Background(), sumJob(t), d.h.Source(), d.h.Sink(), d.cfg)
	if !errors.Is(err, mapreduce.ErrDamaged) || !strings.Contains(err.Error(), "heal it, then replay") {
		t.Errorf("replaying damaged dead letters = %v, want ErrDamaged saying how to heal", err)
	}
}

func (d *damageTest) removeDeadLetters(t *testing.T) {
	t.Helper()
	if err := os.Remove(d.deadLetterFile(t)); err != nil {
		t.Fatal(err)
	}
	d.checkDeadLettersRefused(t)
}

func (d *damageTest) editDeadLetters(t *testing.T, change func(string) string) {
	t.Helper()
	path := d.deadLetterFile(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(change(string(data))), 0o600); err != nil {
		t.Fatal(err)
	}
	d.checkDeadLettersRefused(t)
}

// TestRun_HealsDamagedState_Postgres heals a damaged checkpoint and a
// damaged shuffle file with the fixture and the output in PostgreSQL.
func TestRun_HealsDamagedState_Postgres(t *testing.T) {
	t.Parallel()
	d := newDamageTest(t, mapreducetest.Options{DSN: pgtest.DSN(t)})
	d.stopAfterBucket(t)
	d.edit(t, "checkpoints/p0001.json", false, func(s string) string { return replaceFirst(s, `"next": (\d+)`, flipDigit) })
	d.flipFileByte(t, 2, false)
	if s := d.finish(t); s.PartitionsHealed != 2 {
		t.Errorf("healed %d partitions, want 2\nlog:\n%s", s.PartitionsHealed, d.logs)
	}
}

// TestRun_DamagedPlanSourceChanged: a damaged plan that planning again
// does not reproduce (the source changed) is a clear error, and --fresh
// starts over.
func TestRun_DamagedPlanSourceChanged(t *testing.T) {
	t.Parallel()
	d := newDamageTest(t, mapreducetest.Options{})
	d.stopBeforeReduce(t)
	d.edit(t, "plan.json", false, func(s string) string {
		return replaceFirst(s, `"hi": (\d+)`, func(n string) string { return addTo(n, -5) })
	})
	d.h.Exec(t, "INSERT INTO rows VALUES (1000, 'g99', 5, 'ok')")
	_, err := mapreduce.Run(context.Background(), sumJob(t), d.h.Source(), d.h.Sink(), d.cfg)
	if !errors.Is(err, mapreduce.ErrDamaged) || !strings.Contains(err.Error(), "gives another plan") || !strings.Contains(err.Error(), "--fresh") {
		t.Fatalf("run over a damaged plan of a changed source = %v, want ErrDamaged saying to use --fresh", err)
	}
	d.cfg.Fresh = true
	d.finish(t)
}

// TestRun_DamagedReplayManifest: the rows a replay resolved are in no
// checkpoint, so a damaged replay manifest cannot heal: a clear error.
func TestRun_DamagedReplayManifest(t *testing.T) {
	t.Parallel()
	d := newDamageTest(t, mapreducetest.Options{})
	d.run = d.finish(t).RunID
	d.h.Exec(t, "UPDATE rows SET kind = 'ok' WHERE id = 10")
	if res, err := mapreduce.Replay(context.Background(), sumJob(t), d.h.Source(), d.h.Sink(), d.cfg); err != nil || res.Succeeded != 1 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	d.edit(t, "replay.json", false, func(s string) string { return replaceFirst(s, `"generation": (\d+)`, flipDigit) })
	_, err := mapreduce.Run(context.Background(), sumJob(t), d.h.Source(), d.h.Sink(), d.cfg)
	if !errors.Is(err, mapreduce.ErrDamaged) || !strings.Contains(err.Error(), "--fresh") {
		t.Errorf("run over a damaged replay manifest = %v, want ErrDamaged saying to use --fresh", err)
	}
}

// TestRun_StateFileModes: run state and dead letters hold rows of the
// source: only their owner may read them.
func TestRun_StateFileModes(t *testing.T) {
	t.Parallel()
	d := newDamageTest(t, mapreducetest.Options{})
	s := d.finish(t)
	err := filepath.WalkDir(filepath.Join(d.cfg.Workdir, s.RunID), func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(d.cfg.Workdir, s.RunID, "dlq", "*")); len(files) == 0 {
		t.Error("the run wrote no dead-letter files")
	}
}
