//go:build !windows

package main

// releaseConsole matters on Windows only (console_windows.go).
func releaseConsole() {}
