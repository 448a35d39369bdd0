package ymodemdev

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"
)

// TestSbFlashesTheDevice: a technician with only lrzsz (`sb --ymodem`) can flash the
// virtual bootloader. sb runs on pipes under socat; the device serves the pty socat makes,
// opened through go.bug.st/serial.
func TestSbFlashesTheDevice(t *testing.T) {
	for _, tool := range []string{"socat", "sb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y lrzsz socat)", tool)
		}
	}
	work := t.TempDir()
	next := randomImage(45000)
	if err := os.WriteFile(filepath.Join(work, "app.bin"), next, 0o644); err != nil {
		t.Fatal(err)
	}
	tty := filepath.Join(work, "tty")
	cmd := exec.Command("socat", "pty,raw,echo=0,link="+tty, "EXEC:sb --ymodem -k app.bin,pipes")
	cmd.Dir = work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(tty); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socat made no pty")
		}
		time.Sleep(5 * time.Millisecond)
	}
	port, err := serial.Open(tty, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	cfg := testConfig(t)
	cfg.CInterval = time.Second // sb exits after half a second of silence
	dev, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := randomImage(1000)
	if err := dev.Install(old, Info{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan error, 1)
	start := time.Now()
	go func() { served <- dev.Serve(ctx, port) }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("sb failed: %v: %s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("sb did not finish: %s", stderr.String())
	}
	t.Logf("sb exited after %v", time.Since(start))
	<-served // socat closed the pty when sb exited
	t.Logf("device stopped after %v", time.Since(start))
	mustBoot(t, dev, next)
}
