//go:build !windows

package audit

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
)

// childEnv makes the test binary an appender: TestChildAppender appends to the log it
// names until killed, printing "ack SEQ HASH" after each Append returned.
const childEnv = "FIELDFLASH_AUDIT_CHILD_LOG"

func TestChildAppender(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("the child of TestSIGKILLMidAppendLosesNoAcknowledgedEntry")
	}
	l, err := Open(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		e, err := l.Append(flashEntry(i))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		// One write per ack, unbuffered: what the parent reads was acknowledged.
		os.Stdout.WriteString(fmt.Sprintf("ack %d %s\n", e.Seq, e.Hash))
	}
}

// Real processes appending to one log are killed with SIGKILL at random moments, many
// times over. Every append that returned must be in the log afterwards, with the hash it
// was acknowledged with, and the log must verify whole each time.
func TestSIGKILLMidAppendLosesNoAcknowledgedEntry(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip()
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[uint64]string{}
	kills := 40
	for k := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildAppender$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
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
		n := 0
		go func() {
			defer close(done)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 && f[0] == "ack" {
					var seq uint64
					fmt.Sscan(f[1], &seq)
					acked[seq] = f[2]
					n++
				} else if len(f) > 0 && f[0] != "PASS" {
					t.Errorf("child: %s", sc.Text())
				}
			}
		}()
		time.Sleep(time.Duration(rng.IntN(25000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()

		entries, rep, err := ReadFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.TornTail != nil {
			t.Fatalf("after kill %d the log does not verify: %v (torn tail %v)", k, rep.Problem, rep.TornTail)
		}
		have := map[uint64]string{}
		for _, e := range entries {
			have[e.Seq] = e.Hash
		}
		for seq, h := range acked {
			if have[seq] != h {
				t.Fatalf("after kill %d: acknowledged entry %d (%s) is %q in the log", k, seq, h, have[seq])
			}
		}
	}
	if len(acked) < kills {
		t.Fatalf("only %d appends acknowledged over %d runs: the children hardly ran", len(acked), kills)
	}
	t.Logf("%d kills, %d acknowledged entries, all present", kills, len(acked))
}
