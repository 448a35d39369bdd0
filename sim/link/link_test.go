package link

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/transports/serial"
)

// openLink plugs a cable in at a stable path and opens the host side through
// transports/serial, as fieldflash does.
func openLink(t testing.TB, cfg Config) (*Link, serial.Port) {
	t.Helper()
	if cfg.Symlink == "" {
		cfg.Symlink = filepath.Join(t.TempDir(), "ttySIM0")
	}
	l, err := Open(cfg)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, openHost(t, l)
}

func openHost(t testing.TB, l *Link) serial.Port {
	t.Helper()
	p, err := serial.Open(l.HostPath(), max(l.cfg.Baud, 9600))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeAsync writes from the host without blocking the test: a paced line or a full pty
// makes Write wait.
func writeAsync(p io.Writer, b []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(b)
		done <- err
	}()
	return done
}

// readDevice reads exactly n bytes from the device end, or fails after timeout.
func readDevice(t testing.TB, dev io.Reader, n int, timeout time.Duration) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(dev, b)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("device read %d bytes: %v", n, r.err)
		}
		return r.b
	case <-time.After(timeout):
		t.Fatalf("device did not receive %d bytes within %v", n, timeout)
		return nil
	}
}

// readHost reads exactly n bytes on the host side, or fails after timeout.
func readHost(t testing.TB, p serial.Port, n int, timeout time.Duration) []byte {
	t.Helper()
	p.SetReadTimeout(50 * time.Millisecond)
	deadline := time.Now().Add(timeout)
	got := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("host received %d of %d bytes within %v", len(got), n, timeout)
		}
		k, err := p.Read(buf[:min(len(buf), n-len(got))])
		if err != nil {
			t.Fatalf("host read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:k]...)
	}
	return got
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestLinkCarriesBytesBothWays(t *testing.T) {
	l, host := openLink(t, Config{})
	up, down := pattern(100<<10, 1), pattern(100<<10, 2)
	wrote := writeAsync(host, up)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.Device().Write(down)
	}()
	if got := readDevice(t, l.Device(), len(up), 10*time.Second); !bytes.Equal(got, up) {
		t.Error("device received different bytes than the host sent")
	}
	if got := readHost(t, host, len(down), 10*time.Second); !bytes.Equal(got, down) {
		t.Error("host received different bytes than the device sent")
	}
	wg.Wait()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	// The counters move once a chunk is through, a moment after its last byte arrived.
	waitFor(t, "Stats to count 100 KiB each way", func() bool {
		s := l.Stats()
		return s.HostToDevice == int64(len(up)) && s.DeviceToHost == int64(len(down))
	})
}

// The line can never be faster than its baud rate; how much slower depends on how loaded
// the machine is (the test's own reader and writer are starved too), so the upper bound
// only catches a pacer that is grossly off. The exact figure comes from
// BenchmarkLinkPacing115200.
func TestPacingKeepsTheBaudRateBothWaysAtOnce(t *testing.T) {
	const baud, n = 115200, 12 << 10
	want := time.Duration(n) * time.Second / (baud / 10) // 1.067 s
	l, host := openLink(t, Config{Baud: baud})
	up, down := pattern(n, 3), pattern(n, 4)
	start := time.Now()
	writeAsync(host, up)
	go l.Device().Write(down)
	var upTook time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if got := readDevice(t, l.Device(), n, 10*time.Second); !bytes.Equal(got, up) {
			t.Error("device received different bytes")
		}
		upTook = time.Since(start)
	}()
	if got := readHost(t, host, n, 10*time.Second); !bytes.Equal(got, down) {
		t.Error("host received different bytes")
	}
	downTook := time.Since(start)
	wg.Wait()
	for _, d := range []struct {
		name string
		took time.Duration
	}{{"host->device", upTook}, {"device->host", downTook}} {
		t.Logf("%s: %d bytes at %d baud took %v (line time %v)", d.name, n, baud, d.took, want)
		if d.took < want*98/100 || d.took > want*4 {
			t.Errorf("%s took %v; want about %v (line time, full duplex)", d.name, d.took, want)
		}
	}
}

func TestDropLosesBytesAtTheOffset(t *testing.T) {
	faults, err := ParseFaults("drop@100:5,drop@d2h:10")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults})
	up, down := pattern(1000, 5), pattern(50, 6)
	writeAsync(host, up)
	want := append(append([]byte{}, up[:100]...), up[105:]...)
	if got := readDevice(t, l.Device(), len(want), 5*time.Second); !bytes.Equal(got, want) {
		t.Error("device should have received everything but bytes 100..104")
	}
	l.Device().Write(down)
	want = append(append([]byte{}, down[:10]...), down[11:]...)
	if got := readHost(t, host, len(want), 5*time.Second); !bytes.Equal(got, want) {
		t.Error("host should have received everything but byte 10")
	}
	if s := l.Stats(); s.Dropped != 6 {
		t.Errorf("Stats.Dropped = %d, want 6", s.Dropped)
	}
}

func TestCorruptFlipsOneBitAtTheOffset(t *testing.T) {
	l, host := openLink(t, Config{Faults: []Fault{
		{Kind: Corrupt, Dir: HostToDevice, Offset: 200, Count: 1},
		{Kind: Corrupt, Dir: DeviceToHost, Offset: 20, Count: 2},
	}, Seed: 11})
	up, down := pattern(1000, 7), pattern(50, 8)
	writeAsync(host, up)
	gotUp := readDevice(t, l.Device(), len(up), 5*time.Second)
	l.Device().Write(down)
	gotDown := readHost(t, host, len(down), 5*time.Second)
	inj := l.Injections()
	if len(inj) != 3 {
		t.Fatalf("injections %+v; want 3 corrupted bytes", inj)
	}
	for _, c := range []struct {
		sent, got []byte
		inj       []Injection
	}{{up, gotUp, inj[:1]}, {down, gotDown, inj[1:]}} {
		changed := map[int64]byte{}
		for i := range c.sent {
			if x := c.sent[i] ^ c.got[i]; x != 0 {
				changed[int64(i)] = x
			}
		}
		want := map[int64]byte{}
		for _, in := range c.inj {
			if in.Kind != Corrupt || in.Count != 1 {
				t.Errorf("injection %+v; want one corrupted byte", in)
			}
			want[in.Offset] = 1 << in.Bit
		}
		if !reflect.DeepEqual(changed, want) {
			t.Errorf("bytes changed (offset: xor) %v; want %v, one bit each", changed, want)
		}
	}
	if inj[0].Offset != 200 || inj[1].Offset != 20 || inj[2].Offset != 21 {
		t.Errorf("corrupted offsets %d, %d, %d; want 200 (h2d), 20 and 21 (d2h)", inj[0].Offset, inj[1].Offset, inj[2].Offset)
	}
	if s := l.Stats(); s.Corrupted != 3 {
		t.Errorf("Stats.Corrupted = %d, want 3", s.Corrupted)
	}
}

func TestStallHoldsTheDataThenLetsItThrough(t *testing.T) {
	faults, err := ParseFaults("stall@1000:600ms,stall@d2h:10:200ms")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults})
	up := pattern(2000, 9)
	start := time.Now()
	writeAsync(host, up)
	first := readDevice(t, l.Device(), 1000, 5*time.Second)
	beforeStall := time.Since(start)
	rest := readDevice(t, l.Device(), 1000, 5*time.Second)
	all := time.Since(start)
	if !bytes.Equal(append(first, rest...), up) {
		t.Error("a stall must not change the bytes")
	}
	if beforeStall >= 500*time.Millisecond || all < 600*time.Millisecond {
		t.Errorf("first 1000 bytes after %v, all after %v; want the first before the 600ms stall and the rest after it", beforeStall, all)
	}
	down := pattern(20, 10)
	start = time.Now()
	l.Device().Write(down)
	got := readHost(t, host, 20, 5*time.Second)
	if took := time.Since(start); took < 200*time.Millisecond || !bytes.Equal(got, down) {
		t.Errorf("device->host stall: took %v, bytes equal %v; want >= 200ms and intact", took, bytes.Equal(got, down))
	}
	if s := l.Stats(); s.Stalls != 2 {
		t.Errorf("Stats.Stalls = %d, want 2", s.Stalls)
	}
}

func TestCablePullAtAnOffsetThenReplugAtTheSamePath(t *testing.T) {
	faults, err := ParseFaults("disconnect@500")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults})
	path, dev := l.HostPath(), l.Device()
	up := pattern(1000, 12)
	writeAsync(host, up)

	// The device sees what came before the pull, then the end of the line.
	got, err := io.ReadAll(dev)
	if err != nil || !bytes.Equal(got, up[:500]) {
		t.Fatalf("device read %d bytes (%v) before EOF; want exactly the first 500", len(got), err)
	}
	if _, err := dev.Write([]byte("late")); err == nil {
		t.Error("device Write after the cable pull succeeded")
	}
	// The host's open port fails the way a pulled USB adapter's does.
	host.SetReadTimeout(2 * time.Second)
	if _, err := host.Read(make([]byte, 16)); !errors.Is(err, serial.ErrDisconnected) {
		t.Fatalf("host Read after the pull: %v; want serial.ErrDisconnected", err)
	}
	if _, err := host.Write([]byte("x")); !errors.Is(err, serial.ErrDisconnected) {
		t.Errorf("host Write after the pull: %v; want serial.ErrDisconnected", err)
	}
	host.Close()
	// And the port is gone until the cable goes back in.
	if _, err := serial.Open(path, 115200); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening %s while unplugged: %v; want not found", path, err)
	}
	if l.Connected() {
		t.Error("Connected() while unplugged")
	}

	if err := l.Reconnect(); err != nil {
		t.Fatal(err)
	}
	if l.HostPath() != path {
		t.Fatalf("HostPath moved from %s to %s", path, l.HostPath())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dev2, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host2 := openHost(t, l)
	writeAsync(host2, []byte("hello again"))
	if got := readDevice(t, dev2, 11, 5*time.Second); string(got) != "hello again" {
		t.Errorf("after replug the device got %q", got)
	}
	dev2.Write([]byte("ok"))
	if got := readHost(t, host2, 2, 5*time.Second); string(got) != "ok" {
		t.Errorf("after replug the host got %q", got)
	}
	if s := l.Stats(); s.Disconnects != 1 {
		t.Errorf("Stats.Disconnects = %d, want 1", s.Disconnects)
	}
}

func TestCablePullWithReplugTimeComesBackByItself(t *testing.T) {
	faults, err := ParseFaults("disconnect@d2h:5:100ms")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first.Write([]byte("0123456789"))
	// Whatever the host had not read when the cable went is gone with the tty, as with a
	// real adapter; what it did read is the start of what the device sent before byte 5.
	var got []byte
	host.SetReadTimeout(2 * time.Second)
	for {
		buf := make([]byte, 16)
		n, err := host.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, serial.ErrDisconnected) {
				t.Fatalf("host Read: %v; want serial.ErrDisconnected", err)
			}
			break
		}
		if n == 0 {
			t.Fatal("no cable pull within 2s")
		}
	}
	if !bytes.HasPrefix([]byte("01234"), got) {
		t.Fatalf("host got %q before the pull; want a prefix of 01234", got)
	}
	second, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("no replug within 5s: %v", err)
	}
	if second == first {
		t.Fatal("Accept returned the dead device end again")
	}
	host2 := openHost(t, l)
	second.Write([]byte("back"))
	if got := readHost(t, host2, 4, 5*time.Second); string(got) != "back" {
		t.Errorf("after the replug the host got %q", got)
	}
}

func TestResetLosesWhatTheDeviceHadNotReadAndReboots(t *testing.T) {
	rebooted := make(chan struct{}, 4)
	faults, err := ParseFaults("reset@300")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults, OnReset: func() { rebooted <- struct{}{} }})
	up := pattern(600, 13)
	writeAsync(host, up) // the device reads nothing until it has rebooted
	select {
	case <-rebooted:
	case <-time.After(5 * time.Second):
		t.Fatal("OnReset not called")
	}
	// Bytes 0..299 sat unread in the device's buffer and byte 300 was on the wire: lost.
	// What the host sent after the reboot arrives.
	if got := readDevice(t, l.Device(), 299, 5*time.Second); !bytes.Equal(got, up[301:]) {
		t.Errorf("after the reset the device read %d bytes not equal to the host's bytes 301..599", len(got))
	}
	if s := l.Stats(); s.Resets != 1 {
		t.Errorf("Stats.Resets = %d, want 1", s.Resets)
	}
}

func TestResetLosesWhatTheDeviceHadNotSent(t *testing.T) {
	var l *Link
	var mu sync.Mutex
	faults, err := ParseFaults("reset@d2h:100")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults, OnReset: func() {
		mu.Lock()
		defer mu.Unlock()
		l.Device().Write([]byte("BOOT\n"))
	}})
	down := pattern(300, 14)
	mu.Lock()
	l.Device().Write(down) // queued whole; the reset strikes at its byte 100
	mu.Unlock()
	want := append(append([]byte{}, down[:100]...), "BOOT\n"...)
	if got := readHost(t, host, len(want), 5*time.Second); !bytes.Equal(got, want) {
		t.Errorf("host got %q...; want the first 100 bytes then the boot banner", got[max(0, len(got)-8):])
	}
	host.SetReadTimeout(100 * time.Millisecond)
	if n, _ := host.Read(make([]byte, 16)); n != 0 {
		t.Errorf("%d more bytes arrived after the banner; the rest of the old output should be lost", n)
	}
}

// runSeeded carries the same bytes through a link with random faults and returns what
// struck and what arrived.
func runSeeded(t *testing.T, seed uint64) ([]Injection, []byte) {
	faults, err := ParseFaults("random=0.01:drop|corrupt,corrupt@50")
	if err != nil {
		t.Fatal(err)
	}
	l, host := openLink(t, Config{Faults: faults, Seed: seed})
	up := pattern(4000, 15) // fits the device's buffer: the test reads after the line is done
	writeAsync(host, up)
	waitFor(t, "all bytes to enter the line", func() bool { return l.Stats().HostToDevice == int64(len(up)) })
	s := l.Stats()
	got := readDevice(t, l.Device(), len(up)-int(s.Dropped), 5*time.Second)
	inj := l.Injections()
	var dropped, corrupted int64
	for _, in := range inj {
		switch in.Kind {
		case Drop:
			dropped += in.Count
		case Corrupt:
			corrupted += in.Count
		}
	}
	if dropped != s.Dropped || corrupted != s.Corrupted || dropped == 0 || corrupted == 0 {
		t.Errorf("log says %d dropped, %d corrupted; Stats %+v; want both > 0 and equal", dropped, corrupted, s)
	}
	return inj, got
}

func TestSameSeedStrikesTheSameFaultsAtTheSameOffsets(t *testing.T) {
	inj1, got1 := runSeeded(t, 42)
	inj2, got2 := runSeeded(t, 42)
	if !reflect.DeepEqual(inj1, inj2) || !bytes.Equal(got1, got2) {
		t.Fatalf("seed 42 twice: %d and %d injections, bytes equal %v; want identical runs", len(inj1), len(inj2), bytes.Equal(got1, got2))
	}
	t.Logf("seed 42: %d injections in 4000 bytes at rate 0.01", len(inj1))
	inj3, _ := runSeeded(t, 43)
	if reflect.DeepEqual(inj1, inj3) {
		t.Fatal("seeds 42 and 43 struck identically")
	}
}

func TestCloseTakesTheStablePathAway(t *testing.T) {
	l, _ := openLink(t, Config{Faults: []Fault{{Kind: Disconnect, Dir: HostToDevice, Offset: 1 << 40}}})
	path := l.HostPath()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := l.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := l.Accept(ctx)
		waiting <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Errorf("Accept waiting across Close: %v; want ErrClosed", err)
	}
	if _, err := serial.Open(path, 115200); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("opening %s after Close: %v; want not found", path, err)
	}
	if err := l.Reconnect(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reconnect after Close: %v; want ErrClosed", err)
	}
	if s := l.Stats(); s.Disconnects != 0 {
		t.Errorf("Close counted as %d cable pulls", s.Disconnects)
	}
}

func TestDeviceThatStopsListeningDoesNotBlockTheHost(t *testing.T) {
	l, host := openLink(t, Config{})
	l.Device().Close()
	select {
	case err := <-writeAsync(host, pattern(64<<10, 16)):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("host write blocked on a device that hung up")
	}
}
