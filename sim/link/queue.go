package link

import (
	"errors"
	"io"
	"sync"
)

// errUnplugged is what the device end's Write returns once the cable is pulled.
var errUnplugged = errors.New("link: cable pulled")

// queue is a bounded byte buffer between a pump and the device code: the device's UART
// receive or transmit buffer. Writers block while it is full, readers while it is empty.
type queue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte
	limit    int
	closed   bool // no more writes; readers drain what is left, then get io.EOF
	readGone bool // the reader hung up; writes are swallowed, as bytes sent to a device that is off
	epoch    uint64
}

func newQueue(limit int) *queue {
	q := &queue{limit: limit}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) Write(p []byte) (int, error) {
	n, _, err := q.write(p)
	return n, err
}

// write is Write that also says whether it had to wait for room: time the line spent
// held up by a full buffer, which the pacer must not count as credit.
func (q *queue) write(p []byte) (n int, waited bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(p) > 0 {
		for !q.closed && !q.readGone && len(q.buf) >= q.limit {
			waited = true
			q.cond.Wait()
		}
		if q.closed {
			return n, waited, errUnplugged
		}
		if q.readGone {
			return n + len(p), waited, nil
		}
		k := min(len(p), q.limit-len(q.buf))
		q.buf = append(q.buf, p[:k]...)
		p = p[k:]
		n += k
		q.cond.Broadcast()
	}
	return n, waited, nil
}

func (q *queue) Read(p []byte) (int, error) {
	n, _, err := q.readEpoch(p, true)
	return n, err
}

// readEpoch is Read that also says which flush generation the bytes belong to, so a
// pump that paces them out can tell that a reset made them stale in the meantime.
// Without block it returns (0, epoch, nil) at once when nothing is buffered.
func (q *queue) readEpoch(p []byte, block bool) (int, uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for block && len(q.buf) == 0 && !q.closed && !q.readGone {
		q.cond.Wait()
	}
	if len(q.buf) == 0 && !block && !q.closed && !q.readGone {
		return 0, q.epoch, nil
	}
	if len(q.buf) == 0 {
		return 0, q.epoch, io.EOF
	}
	n := copy(p, q.buf)
	q.buf = q.buf[:copy(q.buf, q.buf[n:])]
	q.cond.Broadcast()
	return n, q.epoch, nil
}

func (q *queue) currentEpoch() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.epoch
}

// flush loses what is buffered: the device rebooted and its UART buffers with it.
func (q *queue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.buf = q.buf[:0]
	q.epoch++
	q.cond.Broadcast()
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

func (q *queue) hangUpReader() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.readGone = true
	q.buf = nil
	q.cond.Broadcast()
}
