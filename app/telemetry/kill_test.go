//go:build !windows

package telemetry

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const childEnv = "FIELDFLASH_QUEUE_CHILD"

// TestChildEnqueuer queues events one by one until killed, printing "ack ID" after each
// Add returned.
func TestChildEnqueuer(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("the child of TestSIGKILLMidEnqueueLosesNoAcknowledgedEvent")
	}
	q, err := OpenQueue(path, Limits{MaxEvents: 1 << 20}, func() time.Time { return start })
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		ev := event(i, start)
		if err := q.Add(ev); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Stdout.WriteString("ack " + ev.ID + "\n")
	}
}

// Real processes queueing events are killed with SIGKILL at random moments, many times
// over; the queue file must open and pass bbolt's consistency check each time, and hold
// every event whose Add returned.
func TestSIGKILLMidEnqueueLosesNoAcknowledgedEvent(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip()
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	rng := rand.New(rand.NewPCG(3, 4))
	acked := map[string]bool{}
	kills := 30
	for k := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildEnqueuer$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kill %d: child did not start: %q", k, sc.Text())
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					acked[id] = true
				} else if !strings.HasPrefix(sc.Text(), "PASS") {
					t.Errorf("child: %s", sc.Text())
				}
			}
		}()
		time.Sleep(time.Duration(rng.IntN(40000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()

		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
		if err != nil {
			t.Fatalf("after kill %d the queue does not open: %v", k, err)
		}
		err = db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		db.Close()
		if err != nil {
			t.Fatalf("after kill %d bbolt's check fails: %v", k, err)
		}
		q, err := OpenQueue(path, Limits{MaxEvents: 1 << 20}, func() time.Time { return start })
		if err != nil {
			t.Fatal(err)
		}
		list, err := q.List(0)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, e := range list {
			have[e.ID] = true
		}
		for id := range acked {
			if !have[id] {
				t.Fatalf("after kill %d acknowledged event %s is gone", k, id)
			}
		}
		if st, _ := q.Status(); st.Waiting != len(list) {
			t.Fatalf("after kill %d the count says %d, the queue holds %d", k, st.Waiting, len(list))
		}
	}
	if len(acked) < kills {
		t.Fatalf("only %d events acknowledged over %d runs", len(acked), kills)
	}
	t.Logf("%d kills, %d acknowledged events, all present", kills, len(acked))
}
