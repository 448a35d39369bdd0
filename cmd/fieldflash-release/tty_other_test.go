//go:build !unix

package main

import "syscall"

func detachedFromTerminal() *syscall.SysProcAttr { return nil }
