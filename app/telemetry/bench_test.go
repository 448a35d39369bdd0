package telemetry

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestBenchDrainToLoopbackCollector (FIELDFLASH_BENCH=1, `make bench`): 100,000 queued
// events drained in batches of 500 to a loopback collector that decodes each request
// with the official OTLP types; events per second, median of 3. Every batch is one
// request and one fsynced queue transaction.
func TestBenchDrainToLoopbackCollector(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("a benchmark: FIELDFLASH_BENCH=1 (make bench)")
	}
	const n = 100000
	var runs []time.Duration
	for range 3 {
		c := newCollector(t).start()
		q := newQueue(t, Limits{MaxEvents: n}, func() time.Time { return start })
		for i := 0; i < n; i += 10000 {
			fill(t, q, 10000, start)
		}
		u := &Uploader{Queue: q, Endpoint: endpointFor(t, c, 0)}
		t0 := time.Now()
		rep, err := u.Drain(context.Background())
		runs = append(runs, time.Since(t0))
		if err != nil || rep.Sent != n || c.unique() != n {
			t.Fatalf("drain: %+v %v, collector has %d", rep, err, c.unique())
		}
		c.srv.Close()
	}
	slices.Sort(runs)
	fmt.Printf("BENCH telemetry_drain_100k %.0f events/s\n", n/runs[1].Seconds())
	fmt.Printf("BENCH telemetry_drain_100k_seconds %.2f s\n", runs[1].Seconds())
}
