package bundle

import (
	"archive/tar"
	"errors"
	"io"
)

const blockSize = 512

// Metadata is every metadata file of a bundle, as raw bytes. Timestamp, Snapshot and
// Targets are always set and Roots holds at least one version; whether any of it is
// trustworthy is for package verify to decide.
type Metadata struct {
	Roots     map[int64][]byte
	Timestamp []byte
	Snapshot  []byte
	Targets   []byte
	Delegated map[string][]byte
}

// Payload is one payload entry. R yields exactly Size bytes, streamed from the file; it is
// valid until the next call to NextPayload. Nothing has checked the bytes against SHA256 yet.
type Payload struct {
	SHA256 string // lowercase hex, from the entry name
	Size   int64
	Offset int64 // where the payload's bytes start in the bundle file
	R      io.Reader
}

// Reader reads a bundle in one forward pass: Metadata first, then NextPayload until io.EOF.
// Every size and count is checked against Limits from the tar header, before anything is
// allocated or read, and every refusal is an *Error.
type Reader struct {
	sr   *io.SectionReader
	size int64
	l    Limits
	cr   *countingReader
	tr   *tar.Reader

	next      int64 // where the next header must start
	entries   int
	seen      map[string]bool
	metaBytes int64

	meta    *Metadata
	pending *entry // the first payload, met while reading metadata
	done    bool   // end-of-archive reached and checked
	err     error  // sticky: once refused, always refused
}

// entry is a header that passed every check against the layout and the limits.
type entry struct {
	name    string
	what    entryName
	size    int64
	dataOff int64
}

// NewReader reads the bundle held in the first size bytes of r. Zero fields of l take
// their defaults.
func NewReader(r io.ReaderAt, size int64, l Limits) *Reader {
	sr := io.NewSectionReader(r, 0, size)
	cr := &countingReader{sr: sr}
	return &Reader{
		sr:   sr,
		size: size,
		l:    l.WithDefaults(),
		cr:   cr,
		tr:   tar.NewReader(cr),
		seen: map[string]bool{},
	}
}

// Metadata reads every metadata entry, which must all come before the first payload.
// Calling it again returns the same result.
func (r *Reader) Metadata() (*Metadata, error) {
	if r.meta != nil || r.err != nil {
		return r.meta, r.err
	}
	m := &Metadata{Roots: map[int64][]byte{}, Delegated: map[string][]byte{}}
	for {
		e, err := r.nextEntry()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, r.fail(err)
		}
		if e.what.kind == entryDir {
			continue
		}
		if e.what.kind == entryPayload {
			r.pending = e
			break
		}
		if err := r.readMetadata(m, e); err != nil {
			return nil, r.fail(err)
		}
	}
	for _, need := range []struct {
		name string
		have bool
	}{
		{MetadataDir + "<version>.root.json", len(m.Roots) > 0},
		{roleName("timestamp"), m.Timestamp != nil},
		{roleName("snapshot"), m.Snapshot != nil},
		{roleName("targets"), m.Targets != nil},
	} {
		if !need.have {
			return nil, r.fail(refuse(KindFormat, need.name, "missing: a bundle carries the root chain, timestamp, snapshot and targets metadata"))
		}
	}
	r.meta = m
	return m, nil
}

func (r *Reader) readMetadata(m *Metadata, e *entry) error {
	switch e.what.kind {
	case entryRoot:
		if len(m.Roots) >= r.l.MaxRootVersions {
			return refuse(KindTooLarge, e.name, "more than %d root versions", r.l.MaxRootVersions)
		}
	case entryDelegated:
		if len(m.Delegated) >= r.l.MaxRoles {
			return refuse(KindTooLarge, e.name, "more than %d delegated roles", r.l.MaxRoles)
		}
	}
	r.metaBytes += e.size
	if r.metaBytes > r.l.MaxMetadataTotalBytes {
		return refuse(KindTooLarge, e.name, "metadata adds up to more than %d bytes", r.l.MaxMetadataTotalBytes)
	}
	// e.size is bounded by MaxMetadataBytes and by what the file holds (nextEntry).
	data := make([]byte, e.size)
	if _, err := io.ReadFull(r.tr, data); err != nil {
		return r.readError(e.name, err)
	}
	switch e.what.kind {
	case entryRoot:
		m.Roots[e.what.version] = data
	case entryTimestamp:
		m.Timestamp = data
	case entrySnapshot:
		m.Snapshot = data
	case entryTargets:
		m.Targets = data
	case entryDelegated:
		m.Delegated[e.what.role] = data
	}
	return nil
}

// NextPayload returns the next payload, or io.EOF once the end-of-archive marker has been
// read and nothing but zero padding follows it. It reads the metadata first if Metadata
// was not called.
func (r *Reader) NextPayload() (*Payload, error) {
	if r.meta == nil && r.err == nil {
		if _, err := r.Metadata(); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	e := r.pending
	r.pending = nil
	for e == nil {
		if r.done {
			return nil, io.EOF
		}
		var err error
		e, err = r.nextEntry()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, r.fail(err)
		}
		switch {
		case e.what.kind == entryDir:
			e = nil
		case e.what.isMetadata():
			return nil, r.fail(refuse(KindFormat, e.name, "metadata after the first payload; every metadata/ entry comes before every targets/ entry"))
		}
	}
	return &Payload{
		SHA256: e.what.sha256,
		Size:   e.size,
		Offset: e.dataOff,
		R:      &payloadReader{r: r, name: e.name},
	}, nil
}

func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// nextEntry reads one header and checks it against the layout and the limits. It returns
// io.EOF only after a complete end-of-archive marker followed by nothing but zeros.
func (r *Reader) nextEntry() (*entry, error) {
	if r.done {
		return nil, io.EOF
	}
	start := r.next
	hdr, err := r.tr.Next()
	switch {
	case err == io.EOF:
		if r.cr.pos != start+2*blockSize {
			return nil, r.endError(start)
		}
		if err := r.checkPadding(r.cr.pos); err != nil {
			return nil, err
		}
		r.done = true
		return nil, io.EOF
	case err != nil && r.cr.err != nil:
		return nil, refuse(KindIO, "", "reading at offset %d: %v", r.cr.pos, r.cr.err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, tar.ErrHeader):
		return nil, r.endError(start)
	case err != nil:
		return nil, refuse(KindFormat, "", "tar header at offset %d: %v", start, err)
	}
	r.entries++
	if r.entries > r.l.MaxEntries {
		return nil, refuse(KindTooLarge, hdr.Name, "more than %d entries", r.l.MaxEntries)
	}
	dataOff := r.cr.pos
	if dataOff != start+blockSize || hdr.Typeflag == tar.TypeXGlobalHeader {
		// archive/tar folded pax or GNU extension records into this header: they can
		// rename an entry or change its size behind the ustar fields, so none is accepted.
		return nil, refuse(KindFormat, hdr.Name, "pax or GNU extension header (long name, extended attributes, sparse map); build the bundle with tar --format=ustar")
	}
	what, perr := parseName(hdr.Name)
	if perr != nil {
		return nil, perr
	}
	if err := r.checkRawHeader(start, hdr, what); err != nil {
		return nil, err
	}
	if err := checkType(hdr, what); err != nil {
		return nil, err
	}
	if r.seen[hdr.Name] {
		return nil, refuse(KindDuplicate, hdr.Name, "appears twice in the bundle")
	}
	r.seen[hdr.Name] = true
	size := hdr.Size
	if what.kind == entryDir {
		size = 0 // archive/tar ignores a directory's size field, and so do we
	}
	switch {
	case what.isMetadata() && size > r.l.MaxMetadataBytes:
		return nil, refuse(KindTooLarge, hdr.Name, "declares %d bytes; metadata files are limited to %d", size, r.l.MaxMetadataBytes)
	case what.kind == entryPayload && size > r.l.MaxPayloadBytes:
		return nil, refuse(KindTooLarge, hdr.Name, "declares %d bytes; payloads are limited to %d", size, r.l.MaxPayloadBytes)
	case size > r.size-dataOff:
		return nil, refuse(KindTruncated, hdr.Name, "declares %d bytes but the file ends %d bytes into it", size, r.size-dataOff)
	}
	r.next = dataOff + (size+blockSize-1)/blockSize*blockSize
	return &entry{name: hdr.Name, what: what, size: size, dataOff: dataOff}, nil
}

// checkRawHeader looks at the header block itself where archive/tar's reading of it
// differs from GNU tar's, so that a bundle never lists one thing to `tar -tf` and another
// to fieldflash. The magic must be ustar's (POSIX "ustar\0" "00", or old GNU "ustar  \0"):
// a V7 header has none, and the spec refuses it. A folder must be typeflag '5' with size
// 0: archive/tar turns the legacy NUL typeflag on a name ending in "/" into a folder and
// reads the next header right after it, while GNU tar skips the size it declares, so the
// entries "inside" would be seen by one reader only.
func (r *Reader) checkRawHeader(start int64, hdr *tar.Header, what entryName) error {
	var block [blockSize]byte
	if _, err := r.sr.ReadAt(block[:], start); err != nil {
		return refuse(KindIO, hdr.Name, "reading the header at offset %d: %v", start, err)
	}
	magic := string(block[257:265])
	if magic != "ustar\x0000" && magic != "ustar  \x00" {
		return refuse(KindFormat, hdr.Name, "a tar header without the ustar magic (an old V7 header); build the bundle with tar --format=ustar")
	}
	if what.kind == entryDir {
		if block[156] != tar.TypeDir {
			return refuse(KindFormat, hdr.Name, "a folder name with tar typeflag %q instead of '5'; GNU tar would read this entry differently (as a file whose data hides the entries after it)", block[156])
		}
		if hdr.Size != 0 {
			return refuse(KindFormat, hdr.Name, "a folder entry that declares %d bytes of data; GNU tar would skip them, fieldflash would read them as entries", hdr.Size)
		}
	}
	return nil
}

func checkType(hdr *tar.Header, what entryName) error {
	switch hdr.Typeflag {
	case tar.TypeReg:
		if what.kind == entryDir {
			return refuse(KindFormat, hdr.Name, "a file named like a folder")
		}
		return nil
	case tar.TypeDir:
		if what.kind != entryDir {
			return refuse(KindFormat, hdr.Name, "a folder where a file belongs; only metadata/ and targets/ are folders")
		}
		return nil
	case tar.TypeSymlink:
		return refuse(KindLinkEntry, hdr.Name, "symbolic link (to %q); a bundle holds only regular files", hdr.Linkname)
	case tar.TypeLink:
		return refuse(KindLinkEntry, hdr.Name, "hard link (to %q); a bundle holds only regular files", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return refuse(KindLinkEntry, hdr.Name, "device or fifo entry; a bundle holds only regular files")
	default:
		return refuse(KindFormat, hdr.Name, "tar entry type %q; a bundle holds only regular files", hdr.Typeflag)
	}
}

// endError explains why the archive did not end with a clean end-of-archive marker at
// start: either the file stops early, or something follows a zero block.
func (r *Reader) endError(start int64) error {
	if start >= r.size {
		return refuse(KindTruncated, "", "the file ends at offset %d without the end-of-archive marker (two zero blocks)", r.size)
	}
	zero, err := r.isZero(start, min(start+blockSize, r.size))
	if err != nil {
		return err
	}
	if !zero {
		if start+blockSize > r.size {
			return refuse(KindTruncated, "", "the file ends inside the tar header at offset %d", start)
		}
		return refuse(KindFormat, "", "bad tar header at offset %d (wrong checksum or magic)", start)
	}
	// A zero block: this is the end-of-archive marker, and it is either cut short or
	// followed by something that is not padding.
	if err := r.checkPadding(start); err != nil {
		return err
	}
	return refuse(KindTruncated, "", "the end-of-archive marker at offset %d is incomplete", start)
}

// checkPadding accepts any run of zero bytes from off to the end of the file: tar pads the
// archive to a whole record (10240 bytes for GNU tar). Anything else was appended.
func (r *Reader) checkPadding(off int64) error {
	buf := make([]byte, 32<<10)
	for off < r.size {
		n := int64(len(buf))
		if r.size-off < n {
			n = r.size - off
		}
		if _, err := r.sr.ReadAt(buf[:n], off); err != nil {
			return refuse(KindIO, "", "reading at offset %d: %v", off, err)
		}
		for i, b := range buf[:n] {
			if b != 0 {
				return refuse(KindTrailingGarbage, "", "data appended after the end-of-archive marker (a non-zero byte at offset %d)", off+int64(i))
			}
		}
		off += n
	}
	return nil
}

func (r *Reader) isZero(from, to int64) (bool, error) {
	buf := make([]byte, to-from)
	if _, err := r.sr.ReadAt(buf, from); err != nil {
		return false, refuse(KindIO, "", "reading at offset %d: %v", from, err)
	}
	for _, b := range buf {
		if b != 0 {
			return false, nil
		}
	}
	return true, nil
}

func (r *Reader) readError(name string, err error) error {
	if r.cr.err != nil {
		return refuse(KindIO, name, "reading at offset %d: %v", r.cr.pos, r.cr.err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return refuse(KindTruncated, name, "the file ends inside this entry")
	}
	return refuse(KindFormat, name, "%v", err)
}

// payloadReader turns archive/tar's errors into refusals the caller can report.
type payloadReader struct {
	r    *Reader
	name string
}

func (p *payloadReader) Read(b []byte) (int, error) {
	n, err := p.r.tr.Read(b)
	if err != nil && err != io.EOF {
		return n, p.r.fail(p.r.readError(p.name, err))
	}
	return n, err
}

// countingReader knows the offset archive/tar has reached, which is how payload offsets
// are found and how extension headers are told apart from plain ones. archive/tar reads
// whole blocks with io.ReadFull and skips data with Seek, never reading ahead.
type countingReader struct {
	sr  *io.SectionReader
	pos int64
	err error // the first error of the underlying file, not io.EOF
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.sr.Read(b)
	c.pos += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	p, err := c.sr.Seek(offset, whence)
	if err == nil {
		c.pos = p
	}
	return p, err
}
