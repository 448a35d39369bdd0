package ymodem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Header is what block 0 says of a file.
type Header struct {
	Name    string
	Size    int64 // -1 when the sender did not say; then the padding stays in the file
	ModTime time.Time
	Mode    uint32
}

// A Sink takes the files of a batch as they arrive.
type Sink interface {
	// Begin is called with each file's header; an error refuses the file and cancels.
	Begin(h Header) (io.Writer, error)
	// End is called once the file is whole (its second EOT), before the receiver
	// acknowledges it, so an acknowledged file is a stored file; an error cancels.
	End(h Header, received int64) error
}

// ReceiveOptions tune the receiver; zero values take the defaults.
type ReceiveOptions struct {
	MaxSize      int64         // largest file accepted (default 16 MiB)
	MaxFiles     int           // files per batch (default 16)
	StartTimeout time.Duration // between two 'C's while waiting for a header (default 3 s)
	StartTries   int           // 'C's sent before giving up on a silent sender (default 20)
	BlockTimeout time.Duration // wait for the next block (default 10 s)
	ByteTimeout  time.Duration // silence inside a block (default 1 s)
	Retries      int           // bad blocks in a row before cancelling (default 10)
	// Started says the caller already read the sender's first block start and put it
	// back (Link.Unread): do not ask with 'C' first.
	Started bool
	// Resync, with Started, is for an idle receiver that saw a block start it did not ask
	// for: the byte may be the tail of a block still on the line from a sender that
	// stopped (killed, or cancelled by this receiver). Unless a header (block 0) follows
	// with no gap of Resync between its bytes, Receive drops input until the line has
	// been quiet for Resync and returns ErrNoBatch without sending anything, so the
	// caller goes back to idle at once instead of asking for a header for a minute.
	Resync time.Duration
}

func (o *ReceiveOptions) defaults() {
	if o.MaxSize <= 0 {
		o.MaxSize = 16 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 16
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Second
	}
	if o.StartTries <= 0 {
		o.StartTries = 20
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = 10 * time.Second
	}
	if o.ByteTimeout <= 0 {
		o.ByteTimeout = time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 10
	}
}

// Receive takes one YMODEM batch from rw (a *Link, or any stream, which it then wraps)
// into sink and returns the headers of the files it stored. It cancels with CAN CAN on a
// block out of order, a bad header, a file over the limits or a refusal by sink, and
// when ctx ends.
func Receive(ctx context.Context, rw io.ReadWriter, sink Sink, opt ReceiveOptions) ([]Header, error) {
	opt.defaults()
	r := &receiver{link: NewLink(rw), opt: opt, sink: sink, buf: make([]byte, 2+1024+2)}
	files, err := r.batch(ctx)
	if err != nil && (ctx.Err() != nil || errors.Is(err, ErrAborted)) {
		_, _ = r.link.Write(cancelSequence)
	}
	return files, err
}

type receiver struct {
	link *Link
	opt  ReceiveOptions
	sink Sink
	buf  []byte
}

// block kinds read from the line
const (
	kindData = iota
	kindEOT
	kindCancel
	kindBad     // damaged: NAK it
	kindTimeout // nothing started
)

func (r *receiver) batch(ctx context.Context) ([]Header, error) {
	var files []Header
	ask := !r.opt.Started
	afterFile := false
	for {
		h, w, end, err := r.header(ctx, ask, afterFile, !afterFile && r.opt.Started && r.opt.Resync > 0, len(files))
		if err != nil || end {
			return files, err
		}
		if err := r.file(ctx, h, w); err != nil {
			return files, fmt.Errorf("file %q: %w", h.Name, err)
		}
		files = append(files, h)
		ask, afterFile = true, true
	}
}

// header waits for block 0, asking with 'C', hands it to the sink and acknowledges it.
// The sink sees the header before the acknowledgement, so a file it refuses is cancelled
// in answer to its header, never in the middle of its data: a sender can tell a refusal
// from a receiver that gave up on the line.
func (r *receiver) header(ctx context.Context, ask, afterFile, resync bool, stored int) (h Header, w io.Writer, end bool, err error) {
	if resync {
		kind, num, data, err := r.read(ctx, time.Now().Add(r.opt.Resync), r.opt.Resync)
		if err != nil {
			return h, nil, false, err
		}
		if kind == kindCancel {
			return h, nil, false, ErrNoBatch // the old sender's last words; what follows is new
		}
		if kind != kindData || num != 0 {
			if _, err := r.link.purge(ctx, r.opt.Resync, time.Now().Add(r.opt.BlockTimeout)); err != nil {
				return h, nil, false, err
			}
			return h, nil, false, ErrNoBatch
		}
		r.link.Unread(r.frame(num, data))
	}
	for try := 0; ; try++ {
		if try >= r.opt.StartTries {
			return h, nil, false, fmt.Errorf("%w: no header after %d requests", ErrTimeout, try)
		}
		if ask {
			if _, err := r.link.Write([]byte{CRC}); err != nil {
				return h, nil, false, err
			}
		}
		ask = true
		kind, num, data, err := r.read(ctx, time.Now().Add(r.opt.StartTimeout), r.opt.ByteTimeout)
		if err != nil {
			return h, nil, false, err
		}
		switch kind {
		case kindCancel:
			return h, nil, false, ErrCancelled
		case kindTimeout, kindBad:
			continue // lrzsz answers a bad header with another 'C'
		case kindEOT:
			if afterFile {
				// Our ACK of the last EOT was lost; the sender repeats it.
				if _, err := r.link.Write([]byte{ACK}); err != nil {
					return h, nil, false, err
				}
			}
			continue
		}
		if num != 0 {
			return h, nil, false, fmt.Errorf("%w: %w: expected header block 0, got block %d", ErrAborted, ErrLineFault, num)
		}
		if data[0] == 0 {
			_, err := r.link.Write([]byte{ACK})
			return h, nil, true, err
		}
		h, err := parseHeader(data)
		if err != nil {
			return h, nil, false, fmt.Errorf("%w: header: %v", ErrAborted, err)
		}
		if h.Size > r.opt.MaxSize {
			return h, nil, false, fmt.Errorf("%w: file %q of %d bytes exceeds the limit of %d bytes", ErrAborted, h.Name, h.Size, r.opt.MaxSize)
		}
		if stored >= r.opt.MaxFiles {
			return h, nil, false, fmt.Errorf("%w: more than %d files in one batch", ErrAborted, r.opt.MaxFiles)
		}
		w, err := r.sink.Begin(h)
		if err != nil {
			return h, nil, false, fmt.Errorf("file %q: %w: refused: %v", h.Name, ErrAborted, err)
		}
		if _, err := r.link.Write([]byte{ACK, CRC}); err != nil {
			return h, nil, false, err
		}
		return h, w, false, nil
	}
}

func (r *receiver) file(ctx context.Context, h Header, w io.Writer) error {
	var got int64
	expect := 1
	errs, eots := 0, 0
	for {
		if errs > r.opt.Retries {
			return fmt.Errorf("%w: %w: %d bad blocks in a row at block %d", ErrAborted, ErrLineFault, errs, expect)
		}
		kind, num, data, err := r.read(ctx, time.Now().Add(r.opt.BlockTimeout), r.opt.ByteTimeout)
		if err != nil {
			return err
		}
		switch kind {
		case kindCancel:
			return ErrCancelled
		case kindTimeout, kindBad:
			errs++
			if _, err := r.link.Write([]byte{NAK}); err != nil {
				return err
			}
			continue
		case kindEOT:
			if eots == 0 {
				// As rb: NAK the first EOT, so a damaged byte that looked like EOT
				// does not end the file.
				eots++
				if _, err := r.link.Write([]byte{NAK}); err != nil {
					return err
				}
				continue
			}
			if h.Size >= 0 && got < h.Size {
				return fmt.Errorf("%w: %w: file ended at byte %d of %d", ErrAborted, ErrLineFault, got, h.Size)
			}
			if err := r.sink.End(h, got); err != nil {
				return fmt.Errorf("%w: %v", ErrAborted, err)
			}
			_, err := r.link.Write([]byte{ACK})
			return err
		}
		eots = 0
		switch num {
		case (expect - 1) & 0xFF:
			// A repeat: our ACK was lost. Acknowledge again; after the header the sender
			// also waits for 'C'.
			errs++
			reply := []byte{ACK}
			if expect == 1 {
				reply = append(reply, CRC)
			}
			if _, err := r.link.Write(reply); err != nil {
				return err
			}
			continue
		case expect & 0xFF:
		default:
			return fmt.Errorf("%w: %w: block %d out of order, expected block %d", ErrAborted, ErrLineFault, num, expect&0xFF)
		}
		keep := int64(len(data))
		if h.Size >= 0 {
			keep = max(0, min(keep, h.Size-got))
		}
		if got+keep > r.opt.MaxSize {
			return fmt.Errorf("%w: more than the limit of %d bytes", ErrAborted, r.opt.MaxSize)
		}
		if keep > 0 {
			if _, err := w.Write(data[:keep]); err != nil {
				return fmt.Errorf("%w: storing block %d: %v", ErrAborted, expect, err)
			}
		}
		got += keep
		expect++
		errs = 0
		if _, err := r.link.Write([]byte{ACK}); err != nil {
			return err
		}
	}
}

// read reads one block (or EOT, or CAN CAN). Bytes that start nothing are skipped until
// deadline; inside a block, a silence of byteTimeout makes it damaged. After a damaged
// block the line is purged, so the retransmission starts clean. A cancel that arrives
// inside a block cut short, or while purging, is a cancel: the sender that sent it says
// nothing more.
func (r *receiver) read(ctx context.Context, deadline time.Time, byteTimeout time.Duration) (kind, num int, data []byte, err error) {
	cans := 0
	for {
		b, err := r.link.ReadByteContext(ctx, deadline)
		if errors.Is(err, ErrTimeout) {
			return kindTimeout, 0, nil, nil
		}
		if err != nil {
			return 0, 0, nil, err
		}
		n := 0
		switch b {
		case SOH:
			n = 128
		case STX:
			n = 1024
		case EOT:
			return kindEOT, 0, nil, nil
		case CAN:
			if cans++; cans >= 2 {
				return kindCancel, 0, nil, nil
			}
			continue
		default:
			cans = 0
			continue
		}
		p := r.buf[:2+n+2]
		if got, err := r.readIdle(ctx, p, byteTimeout); err != nil {
			if errors.Is(err, ErrTimeout) {
				return r.damaged(p[:got]), 0, nil, nil
			}
			return 0, 0, nil, err
		}
		data = p[2 : 2+n]
		if p[0] != ^p[1] || crc16(data) != uint16(p[2+n])<<8|uint16(p[3+n]) {
			dropped, err := r.link.purge(ctx, 30*time.Millisecond, time.Now().Add(r.opt.BlockTimeout))
			if err != nil {
				return 0, 0, nil, err
			}
			return r.damaged(append(bytes.Clone(p), dropped...)), 0, nil, nil
		}
		return kindData, int(p[0]), data, nil
	}
}

// damaged judges a block that came short or garbled, given all its bytes: kindBad, or
// kindCancel when the sender cancelled inside it (its CANs became block bytes). What came
// after the cancel is put back for whoever reads the line next.
func (r *receiver) damaged(p []byte) int {
	rest, ok := findCancel(p)
	if !ok {
		return kindBad
	}
	if len(rest) > 0 {
		r.link.Unread(rest)
	}
	return kindCancel
}

// readIdle fills p, giving up when the line is silent for idle: a block takes about a
// second at 9600 baud, so one deadline for all of it would not fit every speed. It
// returns how many bytes it read.
func (r *receiver) readIdle(ctx context.Context, p []byte, idle time.Duration) (int, error) {
	got := 0
	for got < len(p) {
		n, err := r.link.ReadContext(ctx, p[got:], time.Now().Add(idle))
		if err != nil {
			return got, err
		}
		got += n
	}
	return got, nil
}

// frame rebuilds a block as it came on the line, to hand it back to the link.
func (r *receiver) frame(num int, data []byte) []byte {
	f := make([]byte, 0, 3+len(data)+2)
	start := SOH
	if len(data) == 1024 {
		start = STX
	}
	crc := crc16(data)
	f = append(f, start, byte(num), ^byte(num))
	f = append(f, data...)
	return append(f, byte(crc>>8), byte(crc))
}

// parseHeader reads "name\0size mtime mode ..." as lrzsz writes it; fields after the
// name may be missing.
func parseHeader(data []byte) (Header, error) {
	h := Header{Size: -1}
	end := bytes.IndexByte(data, 0)
	if end < 0 {
		return h, errors.New("the file name is not NUL-terminated")
	}
	h.Name = string(data[:end])
	for _, c := range h.Name {
		if c < 0x20 || c == 0x7F {
			return h, fmt.Errorf("the file name %q holds control characters", h.Name)
		}
	}
	rest := data[end+1:]
	if i := bytes.IndexByte(rest, 0); i >= 0 {
		rest = rest[:i]
	}
	fields := strings.Fields(string(rest))
	if len(fields) > 0 {
		size, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || size < 0 {
			return h, fmt.Errorf("the size %q is not a byte count", fields[0])
		}
		h.Size = size
	}
	if len(fields) > 1 {
		mtime, err := strconv.ParseInt(fields[1], 8, 64)
		if err != nil || mtime < 0 {
			return h, fmt.Errorf("the modification time %q is not an octal number", fields[1])
		}
		if mtime != 0 {
			h.ModTime = time.Unix(mtime, 0)
		}
	}
	if len(fields) > 2 {
		mode, err := strconv.ParseUint(fields[2], 8, 32)
		if err != nil {
			return h, fmt.Errorf("the mode %q is not an octal number", fields[2])
		}
		h.Mode = uint32(mode)
	}
	return h, nil
}
