package campaign

// Benchmarks that span packages: the engine resuming an SMP upload after an interruption
// at 90 %, and our YMODEM sender against lrzsz's sb, both over the simulator's own cable
// (sim/link) shaped at 115200 baud 8N1. Run them with
//
//	FIELDFLASH_BENCH=1 go test -count=1 -run Bench -v ./sim/campaign/     (make bench runs them)

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/transports/serial"
)

func benchOnly(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("a benchmark: set FIELDFLASH_BENCH=1 (make bench) to run it")
	}
}

// TestBenchResumeAfterInterruptionAt90Percent interrupts an SMP update once the device
// has acknowledged 90 % of the image, in two ways: the app is killed (SIGKILL: a new
// process resumes from the journal and the device's offset), and the cable is pulled (the
// same run reconnects and resumes). Either way the device must receive at most one chunk
// twice. It prints the bytes and chunks the device received twice.
func TestBenchResumeAfterInterruptionAt90Percent(t *testing.T) {
	benchOnly(t)
	const baud = 115200
	for _, how := range []string{"killed", "cable_pulled"} {
		dir := t.TempDir()
		r := rand.New(rand.NewPCG(90, 90))
		old, err := buildFirmware(r, 48<<10, "1.0.0", 1)
		if err != nil {
			t.Fatal(err)
		}
		new, err := buildFirmware(r, 48<<10, "2.0.0", 2)
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := writeBundle(dir, new, "smp", smpHardware)
		if err != nil {
			t.Fatal(err)
		}
		f, err := newField(fieldConfig{protocol: "smp", dir: dir, old: old, baud: baud, manualReplug: true,
			layout: flash.Layout{SectorSize: 4096, SlotSize: 0x10000, BootloaderSize: 0x1000}})
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(new.image))
		var interruptedAt int64
		var once sync.Once
		at90 := func(n int, e flasher.Event) bool {
			if e.Kind != flasher.KindProgress || e.Bytes < size*9/10 {
				return false
			}
			fired := false
			once.Do(func() {
				fired = true
				interruptedAt = e.Bytes
				if how == "cable_pulled" {
					go f.link.Disconnect()
				}
			})
			return fired && how == "killed"
		}
		journals := filepath.Join(dir, "journal")
		start := time.Now()
		res, err := f.attempt(context.Background(), bundle, journals, at90, 0, new)
		if err != nil {
			t.Fatal(err)
		}
		var runs []string
		runs = append(runs, res.summary)
		if res.result != flasher.ResultConfirmed {
			res, err = f.attempt(context.Background(), bundle, journals, nil, 0, new)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, res.summary)
		}
		took := time.Since(start)
		st := f.dev.Stats()
		f.close()
		if res.result != flasher.ResultConfirmed {
			t.Fatalf("%s at 90 %%: the update ended %v", how, runs)
		}
		if interruptedAt == 0 {
			t.Fatalf("%s at 90 %%: the interruption never happened (%v)", how, runs)
		}
		resent := st.UploadBytes - size
		perChunk := float64(st.UploadBytes) / float64(st.UploadChunks)
		chunks := int(math.Ceil(float64(max(resent, 0)) / perChunk))
		t.Logf("%s at byte %d of %d: runs %v, resumed at %d, the device received %d bytes in %d chunks (%.0f a chunk), %d twice; %.1fs",
			how, interruptedAt, size, runs, res.outcome.ResumedFrom, st.UploadBytes, st.UploadChunks, perChunk, resent, took.Seconds())
		fmt.Printf("BENCH smp_resume_at_90pct_%s_resent_bytes %d B\n", how, resent)
		fmt.Printf("BENCH smp_resume_at_90pct_%s_resent_chunks %d chunks\n", how, chunks)
		if chunks > 1 {
			t.Errorf("%s at 90 %%: the device received %d bytes (%d chunks) twice, want at most one chunk", how, resent, chunks)
		}
	}
}

// timedSink is a ymodem.Sink that keeps the file and notes when its header and its end
// arrived: the transfer as the receiver sees it, whoever sends.
type timedSink struct {
	buf        bytes.Buffer
	begin, end time.Time
}

func (s *timedSink) Begin(h ymodem.Header) (io.Writer, error) {
	s.begin = time.Now()
	return &s.buf, nil
}

func (s *timedSink) End(h ymodem.Header, received int64) error {
	s.end = time.Now()
	return nil
}

// TestBenchYMODEMAgainstSbOverSimLink sends the same 64 KiB image with our sender and with
// lrzsz's `sb --ymodem -k` (1K blocks, its fastest) through sim/link at 115200 baud into
// the same receiver, best of two each, and prints both rates and their ratio (goal: at
// least 1.0; below 0.97 fails). sb talks
// to the link's pseudo-terminal as it would to a serial port (stdin and stdout).
func TestBenchYMODEMAgainstSbOverSimLink(t *testing.T) {
	benchOnly(t)
	sb, err := exec.LookPath("sb")
	if err != nil {
		t.Fatal("lrzsz's sb is the reference; install it (apt-get install lrzsz)")
	}
	const baud = 115200
	r := rand.New(rand.NewPCG(64, 64))
	image := make([]byte, 64<<10)
	for i := range image {
		image[i] = byte(r.Uint32())
	}

	// receive runs the receiver on a fresh link while send pushes the file from the host
	// end, and returns KB/s (1000 bytes) from the header's arrival to the file's end.
	receive := func(send func(path string) error) float64 {
		l, err := link.Open(link.Config{Baud: baud})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		sent := make(chan error, 1)
		go func() { sent <- send(l.HostPath()) }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sink := &timedSink{}
		if _, err := ymodem.Receive(ctx, l.Device(), sink, ymodem.ReceiveOptions{StartTimeout: 500 * time.Millisecond}); err != nil {
			t.Fatalf("receiving: %v (sender: %v)", err, <-sent)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sink.buf.Bytes(), image) {
			t.Fatalf("the receiver stored %d bytes that differ from the %d sent", sink.buf.Len(), len(image))
		}
		return float64(len(image)) / sink.end.Sub(sink.begin).Seconds() / 1000
	}

	sendOurs := func(path string) error {
		p, err := serial.Open(path, baud)
		if err != nil {
			return err
		}
		defer p.Close()
		p.SetReadTimeout(50 * time.Millisecond)
		_, err = ymodem.Send(context.Background(), p, []ymodem.File{{Name: "app.bin", Size: int64(len(image)), Data: bytes.NewReader(image)}}, ymodem.SendOptions{})
		return err
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.bin"), image, 0o644); err != nil {
		t.Fatal(err)
	}
	sendSb := func(path string) error {
		// Opening the port through transports/serial puts the pty in raw mode, as for any
		// serial port; sb then inherits it as stdin and stdout, as on a real adapter.
		p, err := serial.Open(path, baud)
		if err != nil {
			return err
		}
		defer p.Close()
		tty, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer tty.Close()
		cmd := exec.Command(sb, "--ymodem", "-k", "app.bin")
		cmd.Dir = dir
		cmd.Stdin, cmd.Stdout = tty, tty
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("sb: %v: %s", err, stderr.String())
		}
		return nil
	}
	// Best of two each, interleaved: the figure is the protocol's, not a scheduling hiccup
	// of the loaded machine.
	var ours, theirs float64
	for range 2 {
		ours = max(ours, receive(sendOurs))
		theirs = max(theirs, receive(sendSb))
	}
	ratio := ours / theirs
	t.Logf("64 KiB through sim/link at %d baud: ours %.2f KB/s, sb %.2f KB/s (line: %.2f KB/s)", baud, ours, theirs, float64(baud)/10/1000)
	fmt.Printf("BENCH ymodem_simlink_115200 %.2f KB/s\n", ours)
	fmt.Printf("BENCH ymodem_lrzsz_sb_simlink_115200 %.2f KB/s\n", theirs)
	fmt.Printf("BENCH ymodem_vs_sb_simlink_ratio %.3f ratio\n", ratio)
	if ratio < 0.97 {
		t.Errorf("our sender (%.2f KB/s) is slower than sb (%.2f KB/s) on the same line", ours, theirs)
	}
}
