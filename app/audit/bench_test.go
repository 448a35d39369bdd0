package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestBenchAuditLog (FIELDFLASH_BENCH=1, `make bench`): appending 10,000 entries with an
// fsync each, the same without fsync (the difference is the fsync's cost), and verifying
// a log of 100,000 entries (median of 3; the goal is at least 200,000 entries a second).
func TestBenchAuditLog(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("a benchmark: FIELDFLASH_BENCH=1 (make bench)")
	}
	dir := t.TempDir()
	appendN := func(name string, n int, noSync bool) time.Duration {
		l, err := Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		l.NoSync = noSync
		start := time.Now()
		for i := range n {
			if _, err := l.Append(flashEntry(i)); err != nil {
				t.Fatal(err)
			}
		}
		d := time.Since(start)
		l.Close()
		return d
	}
	const n = 10000
	synced := appendN("synced.log", n, false)
	unsynced := appendN("unsynced.log", n, true)
	fmt.Printf("BENCH audit_append_10k_fsync %.0f entries/s\n", n/synced.Seconds())
	fmt.Printf("BENCH audit_append_10k_fsync_seconds %.2f s\n", synced.Seconds())
	fmt.Printf("BENCH audit_append_10k_nosync %.0f entries/s\n", n/unsynced.Seconds())
	fmt.Printf("BENCH audit_append_fsync_cost %.3f ms/entry\n", float64((synced-unsynced).Microseconds())/1000/n)

	const big = 100000
	path := filepath.Join(dir, "big.log")
	l, _ := Open(path)
	l.NoSync = true
	for i := range big {
		if _, err := l.Append(flashEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	st, _ := os.Stat(path)
	var runs []time.Duration
	for range 3 {
		start := time.Now()
		rep, err := VerifyFile(path, nil)
		runs = append(runs, time.Since(start))
		if err != nil || !rep.OK() || rep.Entries != big {
			t.Fatalf("verify: %v %+v", err, rep)
		}
	}
	slices.Sort(runs)
	rate := big / runs[1].Seconds()
	fmt.Printf("BENCH audit_verify_100k %.0f entries/s\n", rate)
	fmt.Printf("BENCH audit_verify_100k_seconds %.3f s\n", runs[1].Seconds())
	fmt.Printf("BENCH audit_verify_100k_file %.1f MiB\n", float64(st.Size())/(1<<20))
	fmt.Printf("BENCH audit_verify_vs_goal_200k %.2f ratio\n", rate/200000)
}
