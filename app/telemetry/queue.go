package telemetry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Limits cap the queue: the oldest events go first when either is exceeded, and how many
// went is sent with the next upload.
type Limits struct {
	MaxEvents int           // default 10,000
	MaxAge    time.Duration // retention, default 30 days
}

// Defaults.
const (
	DefaultMaxEvents = 10000
	DefaultMaxAge    = 30 * 24 * time.Hour
)

func (l Limits) fill() Limits {
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxAge <= 0 {
		l.MaxAge = DefaultMaxAge
	}
	return l
}

// Queue is the durable queue of events waiting to be sent: a bbolt file, mode 0600. Every
// change is one transaction, fsynced before it returns, so an event Add accepted survives
// a crash, and a kill in the middle of a transaction leaves the queue as it was before.
// The file is opened for each operation and closed after it, so several fieldflash
// processes (the CLI, the GUI) take turns on it.
type Queue struct {
	path   string
	limits Limits
	now    func() time.Time
}

// Queued is an event in the queue and its place there.
type Queued struct {
	Key uint64
	Event
}

// Dropped counts events the queue dropped, not yet reported to the endpoint.
type Dropped struct {
	// ID is the report's event id, stable until the report was delivered.
	ID          string    `json:"id,omitempty"`
	ByCount     int       `json:"by_count"`    // over MaxEvents
	ByAge       int       `json:"by_age"`      // older than MaxAge
	Undecodable int       `json:"undecodable"` // damaged records
	Since       time.Time `json:"since,omitzero"`
}

// Total is all dropped.
func (d Dropped) Total() int { return d.ByCount + d.ByAge + d.Undecodable }

// Sent is what the uploader has done so far.
type Sent struct {
	LastSent    time.Time `json:"last_sent,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Total       int64     `json:"total"`
	// Rejected counts events the endpoint refused for good (400, or a partial success).
	Rejected int64 `json:"rejected"`
	// DroppedReported counts dropped events reported to the endpoint.
	DroppedReported int64 `json:"dropped_reported"`
}

// QueueStatus is what the queue holds and what was sent.
type QueueStatus struct {
	Waiting int       `json:"waiting"`
	Oldest  time.Time `json:"oldest,omitzero"`
	Dropped Dropped   `json:"dropped"`
	Sent    Sent      `json:"sent"`
	Limits  struct {
		MaxEvents int   `json:"max_events"`
		MaxAgeNS  int64 `json:"max_age_ns"`
	} `json:"limits"`
}

var (
	bucketEvents = []byte("events")
	bucketMeta   = []byte("meta")
	keyDropped   = []byte("dropped")
	keySent      = []byte("sent")
	keyCount     = []byte("count")
)

// The number of waiting events is kept in meta, changed in the same transaction as the
// events (bbolt's bucket statistics walk every page).
func getCount(meta *bolt.Bucket) int {
	if v := meta.Get(keyCount); len(v) == 8 {
		return int(binary.BigEndian.Uint64(v))
	}
	return 0
}

func setCount(meta *bolt.Bucket, n int) error { return meta.Put(keyCount, key(uint64(max(n, 0)))) }

// OpenQueue opens (creating if needed) the queue at path. now may be nil (time.Now).
func OpenQueue(path string, limits Limits, now func() time.Time) (*Queue, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("telemetry queue %s: %v", path, err)
	}
	q := &Queue{path: path, limits: limits.fill(), now: now}
	err := q.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// Path is the queue's file.
func (q *Queue) Path() string { return q.path }

// Limits are the caps in force.
func (q *Queue) Limits() Limits { return q.limits }

// lockWait is how long an operation waits for another process that holds the queue.
const lockWait = 10 * time.Second

func (q *Queue) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(q.path, 0o600, &bolt.Options{Timeout: lockWait, ReadOnly: readOnly})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("telemetry queue %s: another fieldflash has held it for %s; try again when it is done", q.path, lockWait)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry queue %s: %v; if it is damaged, `fieldflash telemetry off` and on again starts an empty one", q.path, err)
	}
	return db, nil
}

func (q *Queue) update(fn func(tx *bolt.Tx) error) error {
	db, err := q.open(false)
	if err != nil {
		return err
	}
	if err := db.Update(fn); err != nil {
		db.Close()
		return fmt.Errorf("telemetry queue %s: %w", q.path, err)
	}
	return db.Close()
}

func (q *Queue) view(fn func(tx *bolt.Tx) error) error {
	if _, err := os.Stat(q.path); err != nil {
		return fmt.Errorf("telemetry queue %s: %v", q.path, err)
	}
	db, err := q.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

func key(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func getJSON(b *bolt.Bucket, k []byte, v any) {
	if data := b.Get(k); data != nil {
		json.Unmarshal(data, v)
	}
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// Add queues ev. When the queue is full the oldest events are dropped first (and
// counted); events past the retention are dropped as well. When Add returns nil the
// event is on disk.
func (q *Queue) Add(ev Event) error { return q.AddAll([]Event{ev}) }

// AddAll queues several events in one transaction (one fsync), as Add does.
func (q *Queue) AddAll(evs []Event) error {
	recs := make([][]byte, len(evs))
	for i, ev := range evs {
		rec, err := EncodeRecord(ev)
		if err != nil {
			return err
		}
		recs[i] = rec
	}
	return q.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		meta := tx.Bucket(bucketMeta)
		var d Dropped
		getJSON(meta, keyDropped, &d)
		before := d
		count := getCount(meta) - q.pruneAge(b, &d)
		for _, rec := range recs {
			for ; count >= q.limits.MaxEvents; count-- {
				c := b.Cursor()
				if k, _ := c.First(); k == nil {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
				d.ByCount++
			}
			n, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(key(n), rec); err != nil {
				return err
			}
			count++
		}
		if err := setCount(meta, count); err != nil {
			return err
		}
		if d != before {
			return q.noteDropped(meta, d)
		}
		return nil
	})
}

// pruneAge deletes events older than the retention, oldest first, and returns how many.
func (q *Queue) pruneAge(b *bolt.Bucket, d *Dropped) int {
	limit := q.now().Add(-q.limits.MaxAge)
	c := b.Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.First() {
		ev, err := DecodeRecord(v)
		switch {
		case err != nil:
			d.Undecodable++
		case ev.Hour.Add(time.Hour).Before(limit):
			d.ByAge++
		default:
			return n
		}
		if c.Delete() != nil {
			return n
		}
		n++
	}
	return n
}

func (q *Queue) noteDropped(meta *bolt.Bucket, d Dropped) error {
	if d.ID == "" {
		d.ID = NewEventID()
		d.Since = RoundHour(q.now())
	}
	return putJSON(meta, keyDropped, d)
}

// Prune drops events past the retention now.
func (q *Queue) Prune() error {
	return q.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var d Dropped
		getJSON(meta, keyDropped, &d)
		before := d
		if n := q.pruneAge(tx.Bucket(bucketEvents), &d); n > 0 {
			if err := setCount(meta, getCount(meta)-n); err != nil {
				return err
			}
		}
		if d != before {
			return q.noteDropped(meta, d)
		}
		return nil
	})
}

// Batch is the oldest events (at most n) and the dropped report waiting to go with them.
// Undecodable records are deleted and counted on the way.
func (q *Queue) Batch(n int) ([]Queued, Dropped, error) {
	// Most batches change nothing: read them in a read-only transaction (no fsync), and
	// write only when something must be dropped.
	var out []Queued
	var d Dropped
	clean := true
	limit := q.now().Add(-q.limits.MaxAge)
	err := q.view(func(tx *bolt.Tx) error {
		getJSON(tx.Bucket(bucketMeta), keyDropped, &d)
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			ev, err := DecodeRecord(v)
			if err != nil || len(out) == 0 && ev.Hour.Add(time.Hour).Before(limit) {
				clean = false
				return nil
			}
			out = append(out, Queued{Key: binary.BigEndian.Uint64(k), Event: ev})
		}
		return nil
	})
	if err != nil || clean {
		return out, d, err
	}
	return q.batchUpdate(n)
}

func (q *Queue) batchUpdate(n int) ([]Queued, Dropped, error) {
	var out []Queued
	var d Dropped
	err := q.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		getJSON(meta, keyDropped, &d)
		before := d
		count := getCount(meta) - q.pruneAge(tx.Bucket(bucketEvents), &d)
		b := tx.Bucket(bucketEvents)
		var bad [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			ev, err := DecodeRecord(v)
			if err != nil {
				bad = append(bad, append([]byte(nil), k...))
				continue
			}
			out = append(out, Queued{Key: binary.BigEndian.Uint64(k), Event: ev})
		}
		// Damaged records are dropped and counted (deleted after the walk: a cursor
		// does not move on reliably across its own deletes).
		for _, k := range bad {
			if err := b.Delete(k); err != nil {
				return err
			}
			d.Undecodable++
			count--
		}
		if d != before {
			if err := setCount(meta, count); err != nil {
				return err
			}
			if err := q.noteDropped(meta, d); err != nil {
				return err
			}
			getJSON(meta, keyDropped, &d)
		}
		return nil
	})
	return out, d, err
}

// Ack removes delivered events, and the dropped report if it went with them (only the
// counts it carried: drops since then stay for the next upload). rejected counts events
// the endpoint refused for good.
func (q *Queue) Ack(keys []uint64, report *Dropped, rejected int64) error {
	return q.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		meta := tx.Bucket(bucketMeta)
		count := getCount(meta)
		for _, k := range keys {
			// The cap may have dropped it meanwhile.
			if b.Get(key(k)) == nil {
				continue
			}
			if err := b.Delete(key(k)); err != nil {
				return err
			}
			count--
		}
		if err := setCount(meta, count); err != nil {
			return err
		}
		var s Sent
		getJSON(meta, keySent, &s)
		s.Total += int64(len(keys))
		s.Rejected += rejected
		s.LastSent, s.LastAttempt, s.LastError = q.now(), q.now(), ""
		if report != nil && report.Total() > 0 {
			var d Dropped
			getJSON(meta, keyDropped, &d)
			if d.ID == report.ID {
				d.ByCount -= report.ByCount
				d.ByAge -= report.ByAge
				d.Undecodable -= report.Undecodable
				s.DroppedReported += int64(report.Total())
				d.ID, d.Since = "", time.Time{}
				if d.Total() > 0 {
					d.ID, d.Since = NewEventID(), RoundHour(q.now())
				}
				if err := putJSON(meta, keyDropped, d); err != nil {
					return err
				}
			}
		}
		return putJSON(meta, keySent, s)
	})
}

// NoteAttempt records a failed upload attempt, for the status.
func (q *Queue) NoteAttempt(err error) error {
	return q.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var s Sent
		getJSON(meta, keySent, &s)
		s.LastAttempt = q.now()
		if err != nil {
			s.LastError = err.Error()
		}
		return putJSON(meta, keySent, s)
	})
}

// Status says what waits and what was sent.
func (q *Queue) Status() (QueueStatus, error) {
	var st QueueStatus
	st.Limits.MaxEvents, st.Limits.MaxAgeNS = q.limits.MaxEvents, int64(q.limits.MaxAge)
	err := q.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil
		}
		st.Waiting = getCount(tx.Bucket(bucketMeta))
		if _, v := b.Cursor().First(); v != nil {
			if ev, err := DecodeRecord(v); err == nil {
				st.Oldest = ev.Hour
			}
		}
		meta := tx.Bucket(bucketMeta)
		getJSON(meta, keyDropped, &st.Dropped)
		getJSON(meta, keySent, &st.Sent)
		return nil
	})
	return st, err
}

// List returns up to n waiting events, oldest first (n <= 0: all).
func (q *Queue) List(n int) ([]Queued, error) {
	var out []Queued
	err := q.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil && (n <= 0 || len(out) < n); k, v = c.Next() {
			if ev, err := DecodeRecord(v); err == nil {
				out = append(out, Queued{Key: binary.BigEndian.Uint64(k), Event: ev})
			}
		}
		return nil
	})
	return out, err
}

// Clear deletes every waiting event and the dropped report (telemetry turned off: nothing
// queued is sent). It returns how many events were deleted.
func (q *Queue) Clear() (int, error) {
	n := 0
	err := q.update(func(tx *bolt.Tx) error {
		n = getCount(tx.Bucket(bucketMeta))
		if err := tx.DeleteBucket(bucketEvents); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketEvents); err != nil {
			return err
		}
		if err := setCount(tx.Bucket(bucketMeta), 0); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyDropped)
	})
	return n, err
}
