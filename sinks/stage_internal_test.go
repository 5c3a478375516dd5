package sinks

import (
	"strings"
	"testing"
)

func TestStageName(t *testing.T) {
	t.Parallel()
	if got := stageName("public", "daily_rollup", "daily_rollup-38e27d06"); !strings.HasPrefix(got, "daily_rollup_mr_next_") || len(got) != len("daily_rollup_mr_next_")+8 {
		t.Errorf("stageName = %q, want daily_rollup_mr_next_ and 8 hex digits", got)
	}
	if stageName("public", "t", "run1") == stageName("public", "t", "run2") {
		t.Error("two runs share a staging table")
	}
	if stageName("a", "t", "run1") == stageName("b", "t", "run1") {
		t.Error("two schemas' tables share a staging table name, and its hash")
	}
	long := strings.Repeat("é", 40) // 80 bytes
	got := stageName("public", long, "run1")
	if len(got) > maxIdentifier || !strings.HasPrefix(got, strings.Repeat("é", 23)+stageSuffix) {
		t.Errorf("stageName of a long name = %q (%d bytes), want 23 é, the suffix, at most %d bytes", got, len(got), maxIdentifier)
	}
}

func TestRenameCreate(t *testing.T) {
	t.Parallel()
	const rest = ` (k INTEGER PRIMARY KEY, "a.b" TEXT) STRICT`
	for _, name := range []string{`counts`, `"counts"`, `"co""unts"`, `[co unts]`, "`counts`", `'counts'`, `main.counts`, `"main"."counts"`} {
		got, err := renameCreate("CREATE TABLE "+name+rest, `new "one"`)
		if want := `CREATE TABLE "new ""one"""` + rest; err != nil || got != want {
			t.Errorf("renameCreate(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if got, err := renameCreate("CREATE TABLE counts(k INTEGER PRIMARY KEY)", "n"); err != nil || got != `CREATE TABLE "n"(k INTEGER PRIMARY KEY)` {
		t.Errorf("renameCreate without a space = %q, %v", got, err)
	}
	for _, bad := range []string{"", "CREATE VIEW v AS SELECT 1", `CREATE TABLE "counts (k INTEGER)`, "CREATE TABLE "} {
		if got, err := renameCreate(bad, "n"); err == nil {
			t.Errorf("renameCreate(%q) = %q, want an error", bad, got)
		}
	}
}
