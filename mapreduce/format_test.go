package mapreduce_test

import (
	"strings"
	"testing"

	"github.com/mrengine/mr/mapreduce/mapreducetest"
)

// TestRun_ResumesFormat4: a run planned by an mr of state format 4, from
// before partition.Range.ToMax, resumes where it stopped, since its ranges
// mean what they did; nothing is healed or read twice.
func TestRun_ResumesFormat4(t *testing.T) {
	t.Parallel()
	d := newDamageTest(t, mapreducetest.Options{})
	d.stopMidMap(t)
	d.edit(t, "plan.json", true, func(s string) string {
		if strings.Contains(s, `"to_max"`) {
			t.Fatalf("the plan of damageRows has a range to math.MaxInt64:\n%s", s)
		}
		return replaceFirst(s, `"format": (\d+)`, func(string) string { return "4" })
	})
	s := d.finish(t)
	if s.PartitionsResumed != 1 || s.PartitionsHealed != 0 || s.Resumed == 0 {
		t.Errorf("summary %+v: want partition 0 resumed from its checkpoint, nothing healed", s)
	}
}
