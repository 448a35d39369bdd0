//go:build cgo && unix

package ui

import (
	"os"
	"os/signal"
	"syscall"
)

// onDumpSignal runs f on every SIGUSR1: the real-window test asks what a screen shows.
func onDumpSignal(f func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			f()
		}
	}()
}
