package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// checkLine is DecodeLine for the verifier and for finding the tail: it checks the hash
// over the line's bytes and reads the fields the chain needs (seq, prev, time, kind)
// straight from the head of the line as this package writes it, several times faster
// than decoding the whole entry. It does not decode the other fields: a line whose hash
// matches was hashed by its writer, and the chain says whether that writer was this log's.
// A line laid out otherwise (another writer's field order), and every torn-record entry,
// goes through DecodeLine.
func checkLine(line []byte) (*Entry, error) {
	n := len(line)
	if n > MaxLineBytes || n < hashSuffixLen+2 || line[0] != '{' || line[n-1] != '}' || line[n-2] != '"' ||
		!bytes.Equal(line[n-hashSuffixLen:n-hashSuffixLen+len(hashKey)], hashKey) {
		return DecodeLine(line)
	}
	want := line[n-2-64 : n-2]
	var sum [sha256.Size]byte
	if _, err := hex.Decode(sum[:], want); err != nil || !isLowerHex(want) {
		return DecodeLine(line)
	}
	if sha256.Sum256(line[:n-hashSuffixLen]) != sum {
		return nil, &LineError{Reason: "its hash does not match its contents", Edited: true}
	}
	e, ok := readHead(line)
	if !ok || e.Kind == KindTornRecord {
		return DecodeLine(line)
	}
	e.Hash = string(want)
	return e, nil
}

// readHead reads {"seq":N,"prev":"HEX","time":"RFC3339","kind":"KIND",...
func readHead(b []byte) (*Entry, bool) {
	var e Entry
	rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`))
	if !ok {
		return nil, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 20 || (rest[0] == '0') {
		return nil, false
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return nil, false
	}
	e.Seq = seq
	if rest, ok = bytes.CutPrefix(rest[i:], []byte(`,"prev":"`)); !ok || len(rest) < 65 || rest[64] != '"' || !isLowerHex(rest[:64]) {
		return nil, false
	}
	e.Prev = string(rest[:64])
	if rest, ok = bytes.CutPrefix(rest[65:], []byte(`,"time":"`)); !ok {
		return nil, false
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	if err != nil {
		return nil, false
	}
	e.Time = ts
	if rest, ok = bytes.CutPrefix(rest[j+1:], []byte(`,"kind":"`)); !ok {
		return nil, false
	}
	k := bytes.IndexByte(rest, '"')
	if k <= 0 || bytes.IndexByte(rest[:k], '\\') >= 0 {
		return nil, false
	}
	e.Kind = Kind(rest[:k])
	return &e, true
}
