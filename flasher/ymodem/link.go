package ymodem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// ErrTimeout is returned when the other side stays silent longer than allowed.
var ErrTimeout = errors.New("no answer in time")

// A Link is the byte stream to one device. One goroutine reads it from the first use
// until the stream returns an error (the port is closed), so that a read can wait with a
// deadline and a context whatever the stream: a serial port whose Read returns (0, nil)
// on its timeout, a pipe that blocks, a pseudo-terminal. Bytes read but not consumed stay
// buffered for the next reader on the same Link (a verdict line after a transfer), so hand
// the stream to nobody else once a Link reads it.
type Link struct {
	rw    io.ReadWriter
	start sync.Once

	mu     sync.Mutex
	buf    []byte
	err    error
	notify chan struct{} // capacity 1: "the buffer or err changed"
}

// NewLink wraps rw. Reading starts at the first read.
func NewLink(rw io.ReadWriter) *Link {
	if l, ok := rw.(*Link); ok {
		return l
	}
	return &Link{rw: rw, notify: make(chan struct{}, 1)}
}

func (l *Link) pump() {
	p := make([]byte, 4096)
	idle := 0
	for {
		n, err := l.rw.Read(p)
		if n > 0 {
			idle = 0
			l.mu.Lock()
			l.buf = append(l.buf, p[:n]...)
			l.mu.Unlock()
			l.signal()
		}
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.signal()
			return
		}
		if n == 0 {
			// A serial port returns (0, nil) after its read timeout; a reader that returns
			// it at once must not spin a core.
			idle++
			if idle > 3 {
				time.Sleep(time.Millisecond)
			}
		}
	}
}

func (l *Link) signal() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// Write sends p to the device.
func (l *Link) Write(p []byte) (int, error) { return l.rw.Write(p) }

// Read makes a Link an io.Reader too (without a deadline); it returns what is buffered or
// waits for at least one byte.
func (l *Link) Read(p []byte) (int, error) {
	return l.ReadContext(context.Background(), p, time.Time{})
}

// ReadContext reads at least one byte into p, waiting until deadline (zero: no deadline)
// or until ctx ends.
func (l *Link) ReadContext(ctx context.Context, p []byte, deadline time.Time) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	l.start.Do(func() { go l.pump() })
	var timer *time.Timer
	var expired <-chan time.Time
	for {
		l.mu.Lock()
		if len(l.buf) > 0 {
			n := copy(p, l.buf)
			l.buf = l.buf[n:]
			if len(l.buf) == 0 {
				l.buf = l.buf[:0:0] // let a large buffer go
			}
			l.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return n, nil
		}
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if timer == nil && !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, ErrTimeout
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		select {
		case <-l.notify:
		case <-expired:
			return 0, ErrTimeout
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return 0, ctx.Err()
		}
	}
}

// ReadByteContext reads one byte, waiting until deadline or until ctx ends.
func (l *Link) ReadByteContext(ctx context.Context, deadline time.Time) (byte, error) {
	var b [1]byte
	_, err := l.ReadContext(ctx, b[:], deadline)
	return b[0], err
}

// readFull fills p, each byte due before deadline.
func (l *Link) readFull(ctx context.Context, p []byte, deadline time.Time) error {
	for len(p) > 0 {
		n, err := l.ReadContext(ctx, p, deadline)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// ReadLine returns the next line (without CR/LF), at most max bytes long (longer lines
// are cut), waiting until deadline. Empty lines are skipped.
func (l *Link) ReadLine(ctx context.Context, deadline time.Time, max int) (string, error) {
	var line []byte
	for {
		b, err := l.ReadByteContext(ctx, deadline)
		if err != nil {
			return string(line), err
		}
		switch b {
		case '\r', '\n':
			if len(line) > 0 {
				return string(line), nil
			}
		default:
			if len(line) < max {
				line = append(line, b)
			}
		}
	}
}

// Unread puts p back in front of the buffered input: a caller that read a block's first
// byte hands the stream to Receive with it.
func (l *Link) Unread(p []byte) {
	l.mu.Lock()
	l.buf = append(bytes.Clone(p), l.buf...)
	l.mu.Unlock()
	l.signal()
}

// Discard drops what is buffered now (stale prompts before a transfer starts).
func (l *Link) Discard() {
	l.mu.Lock()
	l.buf = l.buf[:0:0]
	l.mu.Unlock()
}

// purge drops input until the line has been quiet for quiet (or until deadline), as a
// receiver does after a damaged block so the sender's retransmission starts clean. It
// returns what it dropped, so the receiver can look for a cancel in it: a sender that
// gives up while the receiver purges says nothing after its CAN CAN.
func (l *Link) purge(ctx context.Context, quiet time.Duration, deadline time.Time) ([]byte, error) {
	var dropped []byte
	p := make([]byte, 1024)
	for {
		d := time.Now().Add(quiet)
		if !deadline.IsZero() && deadline.Before(d) {
			d = deadline
		}
		n, err := l.ReadContext(ctx, p, d)
		if errors.Is(err, ErrTimeout) {
			return dropped, nil
		}
		if err != nil {
			return dropped, err
		}
		dropped = append(dropped, p[:n]...)
		if !deadline.IsZero() && time.Now().After(deadline) {
			return dropped, nil
		}
	}
}

// findCancel looks for a sender's cancel in the bytes of a damaged block: a run of CANs
// (then perhaps the backspaces lrzsz sends after them) that is at least 4 long, or at
// least 2 long at the very end, where the line went quiet after it. Random damage makes
// either about once in 10^7 damaged blocks. It returns what followed the cancel: the
// start of whatever came next (a new session's identify line), to be read again.
func findCancel(p []byte) (rest []byte, ok bool) {
	for i := 0; i < len(p); {
		if p[i] != CAN {
			i++
			continue
		}
		j := i
		for j < len(p) && p[j] == CAN {
			j++
		}
		k := j
		for k < len(p) && p[k] == 8 {
			k++
		}
		if run := j - i; run >= 4 || run >= 2 && k == len(p) {
			return p[k:], true
		}
		i = j
	}
	return nil, false
}
