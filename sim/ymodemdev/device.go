// Package ymodemdev is a virtual classic bootloader: it takes an application image by
// YMODEM over any byte stream (a pseudo-terminal in the demo and the tests) and follows
// the line conventions of docs/protocols.md § YMODEM (a banner on a newline, a verdict
// line after each batch, a reset command).
//
// Its flash is a directory. A transfer goes to a staging file; only an image that arrived
// whole (its declared size, and whatever Inspect checks, such as an MCUboot image hash) is
// committed, by renames and fsyncs in an order that leaves the old application bootable
// if the power fails at any byte or any step.
package ymodemdev

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher/ymodem"
)

// Info is what Inspect learns from an image.
type Info struct {
	Version string
	Counter uint64 // release (security) counter, for anti-rollback
}

// Config describes one device.
type Config struct {
	Dir        string // its flash; created if missing
	HardwareID string
	Version    string        // bootloader version (default "1.0.0")
	MaxImage   int64         // application area in bytes (default 1 MiB)
	CInterval  time.Duration // how often it asks for a file with 'C' while idle (default 1 s)
	// Inspect, when set, checks a received image before it is committed (for MCUboot
	// images: header, hash TLV) and says its version and counter.
	Inspect func(image io.ReaderAt, size int64) (Info, error)
	// OnReset is called when the host sends the reset command.
	OnReset func()
}

// App is the application the device would boot.
type App struct {
	File    string `json:"file"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Version string `json:"version,omitempty"`
	Counter uint64 `json:"counter"`
	Seq     uint64 `json:"seq"` // how many images were committed; names the next file
}

// Device is one virtual bootloader. Serve runs it on a link; Open after a "power loss"
// reads back what survived on disk.
type Device struct {
	cfg Config

	mu    sync.Mutex
	state App
}

const stateFile = "state.json"

// Open powers the device on: it reads its state and sweeps what an interrupted transfer
// or commit left behind.
func Open(cfg Config) (*Device, error) {
	if cfg.Version == "" {
		cfg.Version = "1.0.0"
	}
	if cfg.MaxImage <= 0 {
		cfg.MaxImage = 1 << 20
	}
	if cfg.CInterval <= 0 {
		cfg.CInterval = time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("device flash %s: %w", cfg.Dir, err)
	}
	d := &Device{cfg: cfg}
	b, err := os.ReadFile(filepath.Join(cfg.Dir, stateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("device flash %s: %w", cfg.Dir, err)
	default:
		if err := json.Unmarshal(b, &d.state); err != nil {
			return nil, fmt.Errorf("device flash %s: state: %w", cfg.Dir, err)
		}
	}
	// Anything but the state and the committed application is debris of an interruption.
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Name() != stateFile && e.Name() != d.state.File {
			_ = os.Remove(filepath.Join(cfg.Dir, e.Name()))
		}
	}
	return d, nil
}

// Booted returns the application the device would boot, after checking it is whole, or
// an error when it holds none that boots.
func (d *Device) Booted() (App, []byte, error) {
	d.mu.Lock()
	st := d.state
	d.mu.Unlock()
	if st.File == "" {
		return st, nil, errors.New("no application installed")
	}
	data, err := os.ReadFile(filepath.Join(d.cfg.Dir, st.File))
	if err != nil {
		return st, nil, fmt.Errorf("application %s: %w", st.File, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != st.Size || hex.EncodeToString(sum[:]) != st.SHA256 {
		return st, nil, fmt.Errorf("application %s is damaged: %d bytes, sha256 %x", st.File, len(data), sum)
	}
	return st, data, nil
}

// Install programs an application as a factory would, through the same commit.
func (d *Device) Install(image []byte, info Info) error {
	st := staging{dev: d, hash: sha256.New()}
	if err := st.open(); err != nil {
		return err
	}
	if _, err := st.Write(image); err != nil {
		return err
	}
	return st.commit(int64(len(image)), &info)
}

// Serve runs the bootloader on rw until ctx ends or rw fails (the cable is pulled).
func (d *Device) Serve(ctx context.Context, rw io.ReadWriter) error {
	link := ymodem.NewLink(rw)
	var line []byte
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			if _, err := link.Write([]byte{ymodem.CRC}); err != nil {
				return err
			}
			next = time.Now().Add(d.cfg.CInterval)
		}
		b, err := link.ReadByteContext(ctx, next)
		if errors.Is(err, ymodem.ErrTimeout) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case b == ymodem.SOH || b == ymodem.STX:
			link.Unread([]byte{b})
			batch, err := d.receive(ctx, link)
			if err != nil {
				return err
			}
			line = line[:0]
			next = time.Now().Add(d.cfg.CInterval)
			if !batch {
				next = time.Now() // resynchronised: ask a waiting sender at once
			}
		case b == '\r' || b == '\n':
			if err := d.command(link, strings.TrimSpace(string(line))); err != nil {
				return err
			}
			line = line[:0]
		case b >= 0x20 && b < 0x7F && len(line) < 64:
			line = append(line, b)
		}
	}
}

func (d *Device) command(link *ymodem.Link, cmd string) error {
	var out string
	switch cmd {
	case "", "identify":
		d.mu.Lock()
		st := d.state
		d.mu.Unlock()
		out = fmt.Sprintf("fieldflash-sim %s hw=%s ver=%s counter=%d max=%d",
			ymodem.BannerMarker, d.cfg.HardwareID, d.cfg.Version, st.Counter, d.cfg.MaxImage)
		if st.File != "" {
			out += fmt.Sprintf(" app=%s app_sha256=%s", orDash(st.Version), st.SHA256)
		}
	case ymodem.ResetCommand:
		_, err := io.WriteString(link, "\r\n"+ymodem.ResetAnswer+"\r\n")
		if d.cfg.OnReset != nil {
			d.cfg.OnReset()
		}
		return err
	default:
		out = fmt.Sprintf("? unknown command %q (identify, reset)", cmd)
	}
	_, err := io.WriteString(link, "\r\n"+out+"\r\n")
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resyncQuiet is how long a block that a stray byte seemed to start may pause between
// bytes, and how long the line must then stay quiet before the device is idle again. A
// sender writes a block in one go; the tail of a block from a sender that stopped (killed,
// or cancelled after a damaged block) is followed by silence.
const resyncQuiet = 100 * time.Millisecond

// receive takes one batch and prints the verdict. It reports whether a batch started at
// all: a block start not followed by a header is the tail of an old block, which the
// device drops without a verdict. It returns an error only when the link is gone; a
// failed transfer is the verdict.
func (d *Device) receive(ctx context.Context, link *ymodem.Link) (batch bool, err error) {
	st := &staging{dev: d}
	_, err = ymodem.Receive(ctx, link, st, ymodem.ReceiveOptions{
		MaxSize: d.cfg.MaxImage, MaxFiles: 1, Started: true, Resync: resyncQuiet,
	})
	st.discard()
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	if errors.Is(err, ymodem.ErrNoBatch) {
		return false, nil
	}
	var verdict string
	switch {
	case err != nil && !st.committed:
		// cause=line tells the sender that flashing again can work; any other failure
		// is the image (too large, not whole, refused by Inspect or anti-rollback).
		cause := "image"
		if errors.Is(err, ymodem.ErrLineFault) || errors.Is(err, ymodem.ErrTimeout) || errors.Is(err, ymodem.ErrCancelled) {
			cause = "line"
		}
		verdict = "fail cause=" + cause + " reason=" + strings.ReplaceAll(err.Error(), "\n", " ")
	case st.committed:
		verdict = fmt.Sprintf("ok size=%d sha256=%x", st.size, st.hash.Sum(nil))
	default:
		verdict = "fail reason=the batch held no file"
	}
	_, werr := io.WriteString(link, "\r\n"+ymodem.VerdictPrefix+verdict+"\r\n")
	if werr != nil {
		return true, werr
	}
	if err != nil && !errors.Is(err, ymodem.ErrAborted) && !errors.Is(err, ymodem.ErrCancelled) &&
		!errors.Is(err, ymodem.ErrTimeout) {
		return true, err // the stream itself failed: the cable is gone
	}
	return true, nil
}

// staging is the area an image is received into: a ymodem.Sink.
type staging struct {
	dev       *Device
	f         *os.File
	hash      hash.Hash
	size      int64
	committed bool
}

func (s *staging) open() error {
	f, err := os.OpenFile(filepath.Join(s.dev.cfg.Dir, "staging.bin"), os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("staging area: %w", err)
	}
	s.f = f
	return nil
}

func (s *staging) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.hash.Write(p[:n])
	s.size += int64(n)
	return n, err
}

// Begin takes the header: one image per batch, of a declared size that fits.
func (s *staging) Begin(h ymodem.Header) (io.Writer, error) {
	if s.f != nil || s.committed {
		return nil, errors.New("one image per batch")
	}
	if h.Size < 0 {
		return nil, errors.New("the header must declare the image size")
	}
	if h.Size > s.dev.cfg.MaxImage {
		return nil, fmt.Errorf("image of %d bytes exceeds the application area of %d bytes", h.Size, s.dev.cfg.MaxImage)
	}
	s.hash = sha256.New()
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// End commits the image when it is whole.
func (s *staging) End(h ymodem.Header, received int64) error {
	if received != h.Size || s.size != h.Size {
		return fmt.Errorf("image incomplete: %d of %d bytes", s.size, h.Size)
	}
	return s.commit(h.Size, nil)
}

// commit makes the staged image the application: fsync the image, rename it to its own
// name, fsync the directory, then replace the state file the same way. A power loss
// before the state's rename leaves the old state, which names the old image, untouched.
func (s *staging) commit(size int64, info *Info) error {
	d := s.dev
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("staging area: %w", err)
	}
	if info == nil && d.cfg.Inspect != nil {
		i, err := d.cfg.Inspect(s.f, size)
		if err != nil {
			return fmt.Errorf("image refused: %w", err)
		}
		info = &i
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.state
	if info != nil {
		if info.Counter < d.state.Counter {
			return fmt.Errorf("image refused: release counter %d is older than the device's %d", info.Counter, d.state.Counter)
		}
		next.Version, next.Counter = info.Version, info.Counter
	}
	next.Seq++
	next.File = fmt.Sprintf("app-%d.bin", next.Seq)
	next.Size = size
	next.SHA256 = hex.EncodeToString(s.hash.Sum(nil))
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	if err := os.Rename(filepath.Join(d.cfg.Dir, "staging.bin"), filepath.Join(d.cfg.Dir, next.File)); err != nil {
		return err
	}
	if err := syncDir(d.cfg.Dir); err != nil {
		return err
	}
	if err := writeState(d.cfg.Dir, next); err != nil {
		return err
	}
	old := d.state.File
	d.state = next
	s.committed = true
	if old != "" {
		_ = os.Remove(filepath.Join(d.cfg.Dir, old))
	}
	return nil
}

func (s *staging) discard() {
	if s.f != nil {
		_ = s.f.Close()
		_ = os.Remove(filepath.Join(s.dev.cfg.Dir, "staging.bin"))
		s.f = nil
	}
}

func writeState(dir string, st App) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
