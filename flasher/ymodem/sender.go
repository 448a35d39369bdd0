package ymodem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// File is one file of a batch.
type File struct {
	Name    string // sent as given: pass a base name, receivers refuse or flatten paths
	Size    int64
	ModTime time.Time // zero sends 0, as lrzsz does for unknown times
	Mode    uint32    // Unix mode in the header; zero sends 0100644, a regular file
	Data    io.ReaderAt
}

// SendOptions tune the sender; zero values take the defaults.
type SendOptions struct {
	StartTimeout time.Duration // wait for the receiver's first 'C' (default 60 s)
	BlockTimeout time.Duration // wait for the answer to one block (default 10 s)
	Retries      int           // sends of one block before giving up (default 10)
	// Progress is called with the bytes of the batch the receiver has acknowledged.
	Progress func(acked int64)
}

func (o *SendOptions) defaults() {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = 10 * time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 10
	}
}

// Send sends files as one YMODEM batch over rw (a *Link, or any stream, which Send then
// wraps in a Link). It returns the bytes the receiver acknowledged, also on error. When
// ctx ends, Send cancels the transfer with CAN CAN before it returns.
func Send(ctx context.Context, rw io.ReadWriter, files []File, opt SendOptions) (int64, error) {
	opt.defaults()
	s := &sender{link: NewLink(rw), opt: opt, frame: make([]byte, 3+1024+2)}
	err := s.batch(ctx, files)
	if err != nil && (ctx.Err() != nil || errors.Is(err, ErrAborted)) {
		_, _ = s.link.Write(cancelSequence)
	}
	return s.acked, err
}

type sender struct {
	link  *Link
	opt   SendOptions
	acked int64
	frame []byte
}

func (s *sender) batch(ctx context.Context, files []File) error {
	if err := s.waitForC(ctx, time.Now().Add(s.opt.StartTimeout)); err != nil {
		return fmt.Errorf("waiting for the receiver to ask for a file ('C'): %w", err)
	}
	for _, f := range files {
		if err := s.file(ctx, f); err != nil {
			return fmt.Errorf("file %s: %w", f.Name, err)
		}
		if err := s.waitForC(ctx, time.Now().Add(s.opt.BlockTimeout)); err != nil && !errors.Is(err, ErrTimeout) {
			return fmt.Errorf("after file %s: %w", f.Name, err)
		}
	}
	// End of batch: an empty block 0. The files are whole once their EOT was acknowledged,
	// and some receivers exit without acknowledging this block, so its loss is no error.
	err := s.block(ctx, 0, make([]byte, 128), 3)
	if err != nil && (errors.Is(err, ErrCancelled) || ctx.Err() != nil) {
		return fmt.Errorf("ending the batch: %w", err)
	}
	return nil
}

func (s *sender) file(ctx context.Context, f File) error {
	if f.Size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrAborted, f.Size)
	}
	header, err := headerBlock(f)
	if err != nil {
		return err
	}
	s.link.Discard() // repeated 'C's while we were getting ready
	if err := s.block(ctx, 0, header, s.opt.Retries); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	// The receiver asks for the data with another 'C'. A lost 'C' costs one header resend,
	// which the receiver acknowledges as a duplicate.
	for try := 0; ; try++ {
		err := s.waitForC(ctx, time.Now().Add(s.opt.BlockTimeout))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrTimeout) || try >= s.opt.Retries {
			return fmt.Errorf("waiting for the receiver to ask for data: %w", err)
		}
		if err := s.block(ctx, 0, header, s.opt.Retries); err != nil {
			return fmt.Errorf("header: %w", err)
		}
	}
	buf := make([]byte, 1024)
	num := 1
	for off := int64(0); off < f.Size; num++ {
		n := 1024
		if rest := f.Size - off; rest <= 896 {
			// lrzsz's tail: 128-byte blocks cost less than padding a 1K one.
			n = 128
		}
		data := buf[:n]
		want := min(int64(n), f.Size-off)
		got, err := f.Data.ReadAt(data[:want], off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(got) == want) {
			return fmt.Errorf("%w: reading at byte %d: %v", ErrAborted, off, err)
		}
		for i := got; i < n; i++ {
			data[i] = Pad
		}
		if err := s.block(ctx, num, data, s.opt.Retries); err != nil {
			return err
		}
		off += want
		s.acked += want
		if s.opt.Progress != nil {
			s.opt.Progress(s.acked)
		}
	}
	return s.eot(ctx)
}

func (s *sender) eot(ctx context.Context) error {
	for try := 0; try < s.opt.Retries; try++ {
		if _, err := s.link.Write([]byte{EOT}); err != nil {
			return fmt.Errorf("sending EOT: %w", err)
		}
		a, err := s.answer(ctx, time.Now().Add(s.opt.BlockTimeout))
		switch {
		case err != nil && !errors.Is(err, ErrTimeout):
			return fmt.Errorf("EOT: %w", err)
		case a == ACK:
			return nil
		}
		// NAK: the receiver makes sure this EOT was no line noise (rb NAKs the first).
	}
	return fmt.Errorf("%w: EOT not acknowledged after %d tries", ErrAborted, s.opt.Retries)
}

// block sends one block until the receiver acknowledges it.
func (s *sender) block(ctx context.Context, num int, data []byte, retries int) error {
	f := s.frame[:3+len(data)+2]
	f[0] = SOH
	if len(data) == 1024 {
		f[0] = STX
	}
	f[1] = byte(num)
	f[2] = ^byte(num)
	copy(f[3:], data)
	crc := crc16(data)
	f[3+len(data)] = byte(crc >> 8)
	f[4+len(data)] = byte(crc)
	reason := "no answer"
	for try := 0; try < retries; try++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := s.link.Write(f); err != nil {
			return &blockError{num, "sending: " + err.Error()}
		}
		a, err := s.answer(ctx, time.Now().Add(s.opt.BlockTimeout))
		switch {
		case err == nil && a == ACK:
			return nil
		case err == nil:
			reason = "refused (NAK)"
		case errors.Is(err, ErrTimeout):
			reason = "no answer in " + s.opt.BlockTimeout.String()
		case num > 0 && errors.Is(err, ErrCancelled):
			return fmt.Errorf("block %d: %w", num, ErrCancelledInData)
		default:
			return fmt.Errorf("block %d: %w", num, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrAborted, &blockError{num, reason + " after " + strconv.Itoa(retries) + " tries"})
}

// answer waits for ACK or NAK. A 'C' is no answer to a block: receivers repeat it while
// they wait to start, so one may still be on the line.
func (s *sender) answer(ctx context.Context, deadline time.Time) (byte, error) {
	cans := 0
	for {
		b, err := s.link.ReadByteContext(ctx, deadline)
		if err != nil {
			return 0, err
		}
		switch b {
		case ACK, NAK:
			return b, nil
		case CAN:
			if cans++; cans >= 2 {
				return 0, ErrCancelled
			}
			continue
		}
		cans = 0
	}
}

func (s *sender) waitForC(ctx context.Context, deadline time.Time) error {
	cans := 0
	for {
		b, err := s.link.ReadByteContext(ctx, deadline)
		if err != nil {
			return err
		}
		switch b {
		case CRC:
			return nil
		case CAN:
			if cans++; cans >= 2 {
				return ErrCancelled
			}
			continue
		}
		cans = 0
	}
}

// headerBlock is block 0 as lrzsz writes it: "name\0size mtime mode" with mtime and mode
// in octal, padded with NULs to 128 bytes, or 1024 when the name needs it.
func headerBlock(f File) ([]byte, error) {
	if f.Name == "" {
		return nil, fmt.Errorf("%w: a file needs a name (an empty name ends the batch)", ErrAborted)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o100644
	}
	var mtime int64
	if !f.ModTime.IsZero() {
		mtime = f.ModTime.Unix()
	}
	h := append([]byte(f.Name), 0)
	h = fmt.Appendf(h, "%d %o %o", f.Size, mtime, mode)
	switch {
	case len(h) <= 128:
		return append(h, make([]byte, 128-len(h))...), nil
	case len(h) <= 1024:
		return append(h, make([]byte, 1024-len(h))...), nil
	}
	return nil, fmt.Errorf("%w: file name of %d bytes does not fit block 0", ErrAborted, len(f.Name))
}
