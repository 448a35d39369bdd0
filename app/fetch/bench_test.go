//go:build unix

package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify/release"
)

// TestFetchThroughputAgainstCurl fetches a 256 MiB target from a loopback server, in a
// process of its own (so its peak RSS is its own), interleaved with `curl -o` of the same
// file from the same server: curl is the floor of what this machine's loopback, disk and
// page cache allow. It prints medians of 5 runs, the throughput ratio (goal: at least 0.9
// of curl's) and the fetch's peak RSS (goal: under 64 MiB). The fetch checks every 1 MiB
// chunk and the whole file's SHA-256, and fsyncs the file before it lands in the cache;
// curl does none of that.
//
//	FIELDFLASH_BENCH=1 go test ./app/fetch/ -run Throughput -v     (make bench runs it)
func TestFetchThroughputAgainstCurl(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("a benchmark: set FIELDFLASH_BENCH=1 (make bench) to run it")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is the reference; install it (apt-get install curl)")
	}
	const size = 256 << 20
	v := newVendor(t)
	big := filepath.Join(v.files, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	chunk := payload("big", 1<<20)
	for range size >> 20 {
		chunk[0]++
		f.Write(chunk)
	}
	f.Close()
	_, err = v.repo.AddTarget(release.NewTarget{Path: "acme-gw/big.bin", File: big, Meta: meta("acme-gw-r2", "app", "9.0.0", 9)})
	v.must(err)
	v.publish()
	os.Remove(big)
	srv := httptest.NewServer(http.FileServer(http.Dir(v.repo.Dir)))
	defer srv.Close()
	l := newLaptop(t, v, srv.URL)
	out := filepath.Join(t.TempDir(), "curl.out")

	fetchRun := func() (time.Duration, int64) {
		os.RemoveAll(filepath.Join(l.home, "cache", "targets"))
		os.RemoveAll(filepath.Join(l.home, "cache", "partial"))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FIELDFLASH_FETCH_HELPER=1", "FIELDFLASH_HOME="+l.home, "FIELDFLASH_HARDWARE=acme-gw-r2")
		start := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fetch: %v\n%s", err, b)
		}
		return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	}
	curlRun := func() time.Duration {
		os.Remove(out)
		start := time.Now()
		if b, err := exec.Command(curl, "-sS", "-o", out, srv.URL+"/targets/acme-gw/big.bin").CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, b)
		}
		return time.Since(start)
	}
	fetchRun() // metadata fetched once, so the runs measure the download
	var tf, tc []time.Duration
	var rss int64
	for range 5 {
		tc = append(tc, curlRun())
		d, r := fetchRun()
		tf = append(tf, d)
		rss = max(rss, r)
	}
	mf, mc := median(tf), median(tc)
	ratio := mc.Seconds() / mf.Seconds()
	fmt.Printf("BENCH fetch_256mib_median %.3f s\n", mf.Seconds())
	fmt.Printf("BENCH curl_256mib_median %.3f s\n", mc.Seconds())
	fmt.Printf("BENCH fetch_vs_curl_throughput %.3f x\n", ratio)
	fmt.Printf("BENCH fetch_peak_rss_256mib %.1f MiB\n", float64(rss)/(1<<20))
	if rss > 64<<20 {
		t.Errorf("peak RSS %d bytes fetching 256 MiB; want under 64 MiB", rss)
	}
	if ratio < 0.9 {
		t.Logf("throughput %.2fx curl's, below the 0.9x goal (see the comment above for what the fetch does that curl does not)", ratio)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkFetch measures one fetch of a 64 MiB chunked target from loopback, in process.
func BenchmarkFetch(b *testing.B) {
	v := newVendor(b)
	v.add("acme-gw/app.bin", payload("bench", 64<<20), meta("acme-gw-r2", "app", "1.0.0", 1))
	v.publish()
	srv := httptest.NewServer(http.FileServer(http.Dir(v.repo.Dir)))
	defer srv.Close()
	b.SetBytes(64 << 20)
	for range b.N {
		l := newLaptop(b, v, srv.URL)
		if _, err := Fetch(context.Background(), l.options("acme-gw-r2")); err != nil {
			b.Fatal(err)
		}
	}
}
