package link

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkLinkPacing115200 measures a 64 KiB upload through a 115200-baud link: the line
// time is 65536 / 11520 = 5.689 s. Run it alone:
//
//	go test -run '^$' -bench LinkPacing -benchtime 1x ./sim/link/
//
// link_pacing_error is end to end, from the host's Write to the device's last Read, so a
// scheduling hiccup of the loaded machine at the start or the end shows in it.
// link_pacing_stream_error is from the first bytes the device got to the last, against
// the line time of the bytes in between: the pacer's own accuracy.
func BenchmarkLinkPacing115200(b *testing.B) {
	const baud, n = 115200, 64 << 10
	const rate = baud / 10
	var took, stream time.Duration
	var streamBytes int
	for range b.N {
		l, host := openLink(b, Config{Baud: baud})
		up := pattern(n, 99)
		started := make(chan time.Time, 1)
		go func() {
			started <- time.Now()
			host.Write(up)
		}()
		got := make([]byte, 0, n)
		buf := make([]byte, 4096)
		var first time.Time
		for len(got) < n {
			k, err := l.Device().Read(buf)
			if k > 0 && first.IsZero() {
				first = time.Now()
				streamBytes = n - k
			}
			got = append(got, buf[:k]...)
			if err == io.EOF {
				break
			}
		}
		end := time.Now()
		took, stream = end.Sub(<-started), end.Sub(first)
		if !bytes.Equal(got, up) {
			b.Fatal("device received different bytes")
		}
		l.Close()
	}
	want := float64(n) / rate
	errPct := (took.Seconds() - want) / want * 100
	streamWant := float64(streamBytes) / rate
	streamErrPct := (stream.Seconds() - streamWant) / streamWant * 100
	b.ReportMetric(n/took.Seconds(), "B/s")
	b.ReportMetric(errPct, "%err")
	fmt.Printf("BENCH link_pacing_115200 %.0f B/s\n", n/took.Seconds())
	fmt.Printf("BENCH link_pacing_error %.2f %%\n", errPct)
	fmt.Printf("BENCH link_pacing_64KiB_seconds %.3f s\n", took.Seconds())
	fmt.Printf("BENCH link_pacing_stream_error %.2f %%\n", streamErrPct)
}
