package telemetry

import (
	"testing"
	"time"
)

// FuzzDecodeRecord: any bytes as a queued record. What decodes must encode again, and
// decode to the same event.
func FuzzDecodeRecord(f *testing.F) {
	rec, _ := EncodeRecord(event(1, start))
	f.Add(rec)
	f.Add([]byte(`{"v":1,"id":"00000000000000000000000000000000","type":"flash","hour":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := EncodeRecord(ev)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", ev, err)
		}
		ev2, err := DecodeRecord(again)
		if err != nil || ev2 != ev {
			t.Fatalf("round trip %+v -> %+v (%v)", ev, ev2, err)
		}
	})
}

// FuzzJudge: any status, Retry-After and body from the endpoint. The verdict is one
// thing, and a wait is never negative nor beyond the cap.
func FuzzJudge(f *testing.F) {
	f.Add(200, "", []byte{0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, 'b', 'a', 'd'})
	f.Add(429, "120", []byte{})
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte{0x12, 0x02, 'n', 'o'})
	f.Add(500, "-1", []byte("plain text"))
	f.Add(413, "", []byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		v := Judge(status, retryAfter, body, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		n := 0
		for _, b := range []bool{v.Delivered, v.Drop, v.Retry} {
			if b {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("status %d: verdict %+v is not exactly one of delivered, drop, retry", status, v)
		}
		if v.After < 0 || v.After > MaxRetryAfter || v.Rejected < 0 || len(v.Message) > 204 {
			t.Fatalf("verdict %+v", v)
		}
	})
}
