//go:build windows

package app

// syncDir is a no-op on Windows: directories cannot be opened for FlushFileBuffers, and
// NTFS journals the rename itself.
func syncDir(dir string) error { return nil }
