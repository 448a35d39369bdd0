package flasher

// syncDir does nothing on Windows: directories cannot be opened for fsync there, and
// MoveFileEx (os.Rename) with NTFS journaling already makes the rename durable.
func syncDir(dir string) error { return nil }
