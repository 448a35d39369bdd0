//go:build windows

package main

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

// releaseConsole lets go of the console window Windows opened for fieldflash.exe when it
// was started from Explorer or the Start menu to open the desktop app. fieldflash.exe is a
// console program, so that `fieldflash.exe verify ...` in cmd or PowerShell prints there
// and its exit code reaches scripts; a console that only this process uses is one that
// Windows made for it, and it closes. Started from a console, it keeps that console.
func releaseConsole() {
	kernel32 := windows.NewLazySystemDLL("kernel32.dll")
	list := kernel32.NewProc("GetConsoleProcessList")
	var pids [2]uint32
	if n, _, _ := list.Call(uintptr(unsafe.Pointer(&pids[0])), uintptr(len(pids))); n == 1 {
		kernel32.NewProc("FreeConsole").Call()
	}
}
