//go:build unix

package verify

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// TestVerifyingAGigabytePayloadKeepsPaceWithOpenSSL runs `fieldflash verify` (the real
// binary, as its own process) on a bundle with a 1 GiB raw payload, interleaved with
// `openssl dgst -sha256` over the same payload: openssl is the hashing floor of this CPU.
// It prints medians of 5 runs, their ratio (goal: at most 1.10), and the verifier's peak
// RSS for a 64 MiB and a 1 GiB payload (goal: under 64 MiB and flat).
//
//	FIELDFLASH_BENCH=1 go test ./verify/ -run GigabytePayload -v     (make bench runs it)
func TestVerifyingAGigabytePayloadKeepsPaceWithOpenSSL(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("a benchmark: set FIELDFLASH_BENCH=1 (make bench) to run it")
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed as the reference; install it (apt-get install openssl)")
	}
	dir := t.TempDir()
	cli := filepath.Join(dir, "fieldflash")
	build := exec.Command("go", "build", "-o", cli, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building fieldflash: %v\n%s", err, out)
	}
	// Each bundle gets a machine of its own: both are version 1 of the same repository with
	// different targets, which one machine would rightly refuse as a forked version.
	homes := map[string]string{"small": filepath.Join(dir, "home-small"), "huge": filepath.Join(dir, "home-huge")}

	r := fxNewRepo(t)
	rootFile := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootFile, r.opts(nil).Roots[0].Root, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, home := range homes {
		if out, err := fxRun(cli, home, "trust", "add", rootFile, "--name", "acme", "--yes"); err != nil {
			t.Fatalf("trust add: %v\n%s", err, out)
		}
	}
	makeBundle := func(name string, size int64) (bundlePath, payload string) {
		payload = filepath.Join(dir, name+".bin")
		sha := fxWriteRandom(t, payload, size)
		tf := metadata.TargetFile()
		tf.Length = size
		sum, _ := hex.DecodeString(sha)
		tf.Hashes["sha256"] = sum
		custom, _ := json.Marshal(map[string]any{CustomKey: fxMeta()})
		raw := json.RawMessage(custom)
		tf.Custom = &raw
		r.targets.Signed.Targets["acme-gw/"+name+".bin"] = tf
		c := r.contents()
		c.Payloads = []bundle.PayloadSource{{SHA256: sha, Size: size, Open: func() (io.ReadCloser, error) { return os.Open(payload) }}}
		delete(r.targets.Signed.Targets, "acme-gw/"+name+".bin")
		return fxWrite(t, name+".fwb", c), payload
	}
	verifyRun := func(name, path string) (time.Duration, int64) {
		start := time.Now()
		cmd := exec.Command(cli, "verify", path)
		cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+homes[name])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fieldflash verify: %v\n%s", err, out)
		}
		wall := time.Since(start)
		return wall, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	}

	small, _ := makeBundle("small", 64<<20)
	_, rssSmall := verifyRun("small", small)
	big, payload := makeBundle("huge", 1<<30)
	var tv, to []time.Duration
	var rssBig int64
	for range 5 {
		start := time.Now()
		if out, err := exec.Command(openssl, "dgst", "-sha256", payload).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v %s", err, out)
		}
		to = append(to, time.Since(start))
		d, rss := verifyRun("huge", big)
		tv = append(tv, d)
		rssBig = max(rssBig, rss)
	}
	mv, mo := median(tv), median(to)
	ratio := mv.Seconds() / mo.Seconds()
	fmt.Printf("BENCH verify_1gib_median %.3f s\n", mv.Seconds())
	fmt.Printf("BENCH openssl_sha256_1gib_median %.3f s\n", mo.Seconds())
	fmt.Printf("BENCH verify_vs_openssl_ratio %.3f x\n", ratio)
	fmt.Printf("BENCH verify_peak_rss_64mib_payload %.1f MiB\n", float64(rssSmall)/(1<<20))
	fmt.Printf("BENCH verify_peak_rss_1gib_payload %.1f MiB\n", float64(rssBig)/(1<<20))
	if ratio > 1.10 {
		t.Errorf("verification took %.2fx openssl's time, want at most 1.10x", ratio)
	}
	if rssBig > 64<<20 {
		t.Errorf("peak RSS %d bytes verifying a 1 GiB payload; want under 64 MiB", rssBig)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2]
}

func fxRun(cli, home string, args ...string) ([]byte, error) {
	cmd := exec.Command(cli, args...)
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home)
	return cmd.CombinedOutput()
}

func fxWriteRandom(t testing.TB, path string, size int64) string {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	h := sha256.New()
	block := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	for written := int64(0); written < size; written += int64(len(block)) {
		_, _ = rng.Read(block)
		_, _ = w.Write(block)
		h.Write(block)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
