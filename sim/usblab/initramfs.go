package usblab

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Initramfs is a set of files for a newc cpio archive (what the kernel unpacks as its
// first root file system). Keys are absolute paths in the guest; values are host paths.
type Initramfs map[string]string

// Write writes the archive: every directory the files need, then the files (mode 0755
// for executables found on the host, as they are).
func (fs Initramfs) Write(w io.Writer) error {
	dirs := map[string]bool{}
	var names []string
	for name := range fs {
		names = append(names, name)
		for d := path.Dir(name); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	sort.Strings(names)
	ino := 1
	hdr := func(name string, mode, size int) error {
		name = strings.TrimPrefix(name, "/")
		_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
			ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0, name)
		ino++
		if err != nil {
			return err
		}
		return pad(w, 110+len(name)+1)
	}
	for _, d := range dl {
		if err := hdr(d, 0o040755, 0); err != nil {
			return err
		}
	}
	for _, name := range names {
		b, err := os.ReadFile(fs[name])
		if err != nil {
			return fmt.Errorf("usblab: initramfs: %w", err)
		}
		fi, _ := os.Stat(fs[name])
		mode := 0o100644
		if fi.Mode()&0o111 != 0 {
			mode = 0o100755
		}
		if err := hdr(name, mode, len(b)); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if err := pad(w, len(b)); err != nil {
			return err
		}
	}
	return hdr("TRAILER!!!", 0, 0)
}

func pad(w io.Writer, n int) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
