//go:build cgo && !unix

package ui

// onDumpSignal: no SIGUSR1 here; the real-window test runs on Linux.
func onDumpSignal(func()) {}
