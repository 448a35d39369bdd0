package link

import "time"

// pacer spaces bytes out at a UART's speed. It keeps an absolute schedule (the time the
// line finishes the last byte handed to it) rather than sleeping per chunk, so timer
// slack on a busy machine is paid back on the next chunk and a long transfer takes
// bytes/rate to within a few milliseconds.
type pacer struct {
	rate float64 // bytes per second; 0 = unpaced
	next time.Time
}

// maxCatchUp bounds how far behind schedule the line may fall (timer slack, a machine so
// loaded that the pump is not scheduled for a second) and still catch up at full speed;
// a laptop waking from sleep gets no burst of minutes of data. Time the line was idle is
// no credit at all: the pumps tell the pacer about it with idle.
const maxCatchUp = 2 * time.Second

func newPacer(baud int) *pacer {
	if baud <= 0 {
		return &pacer{}
	}
	return &pacer{rate: float64(baud) / 10} // 8N1: start bit, 8 data bits, stop bit
}

// sliceLen is how many bytes to hand over at once: about 5 ms of line time, so the far
// side sees a stream rather than bursts, without waking hundreds of timers per second.
func (p *pacer) sliceLen() int {
	if p.rate == 0 {
		return 1 << 16
	}
	return max(1, int(p.rate/200))
}

// idle tells the pacer the line had nothing to send until now, or was held up by the
// far side: an idle line earns no credit, the next byte takes its full time again.
func (p *pacer) idle(now time.Time) {
	if p.next.Before(now) {
		p.next = now
	}
}

// wait blocks until n more bytes have gone down the line, or done closes (false).
func (p *pacer) wait(n int, done <-chan struct{}) bool {
	if p.rate == 0 || n == 0 {
		return true
	}
	now := time.Now()
	if p.next.IsZero() {
		p.next = now // the first bytes ever: no credit from before the line existed
	}
	if floor := now.Add(-maxCatchUp); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	return sleepUntil(p.next, done)
}

// hold restarts the schedule after a stall or a reset: time spent stalled is not credit.
func (p *pacer) hold(now time.Time) { p.next = now }

func sleepUntil(t time.Time, done <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}
