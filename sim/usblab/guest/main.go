//go:build linux

// Command guest is PID 1 of the USB lab's virtual machine: it mounts what a minimal Linux
// needs, loads the USB gadget and host modules, serves sim/dfudev twins as USB gadgets on
// dummy_hcd and runs dfu-util and fieldflash's USB path against them through the kernel's
// real USB stack. Every check prints "USBLAB PASS name" or "USBLAB FAIL name: why" on the
// console; the last line is "USBLAB DONE: N passed, M failed", then the machine powers off.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	passed, failed int
	debug          bool
)

func check(name string, f func() error) {
	start := time.Now()
	fmt.Printf("usblab: running %s\n", name)
	res := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				res <- fmt.Errorf("panic: %v", r)
			}
		}()
		res <- f()
	}()
	var err error
	select {
	case err = <-res:
	case <-time.After(150 * time.Second):
		err = fmt.Errorf("no verdict within 150 s")
		dumpGoroutines()
	}
	if err != nil {
		failed++
		fmt.Printf("USBLAB FAIL %s: %s\n", name, strings.ReplaceAll(err.Error(), "\n", "\n    "))
		return
	}
	passed++
	fmt.Printf("USBLAB PASS %s (%.1f s)\n", name, time.Since(start).Seconds())
}

func dumpGoroutines() {
	b := make([]byte, 1<<20)
	n := runtime.Stack(b, true)
	fmt.Printf("usblab: goroutines:\n%s\n", b[:n])
}

func logf(format string, args ...any) { fmt.Printf("usblab: "+format+"\n", args...) }

func mount(src, dst, fstype string) {
	os.MkdirAll(dst, 0o755)
	if err := syscall.Mount(src, dst, fstype, 0, ""); err != nil && err != syscall.EBUSY {
		logf("mount %s on %s: %v", fstype, dst, err)
	}
}

// modules in load order (each after what it depends on).
var modules = []string{"usb-common", "usbcore", "udc-core", "configfs", "libcomposite", "dummy_hcd", "usb_f_fs", "u_serial", "usb_f_acm", "cdc-acm"}

func loadModules() error {
	for _, m := range modules {
		path := filepath.Join("/lib/modules", m+".ko.xz")
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", unix.MODULE_INIT_COMPRESSED_FILE)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("loading %s: %w", m, err)
		}
	}
	return nil
}

func cmdline() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	out := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return out
}

func main() {
	mount("proc", "/proc", "proc")
	mount("sysfs", "/sys", "sysfs")
	mount("devtmpfs", "/dev", "devtmpfs")
	mount("tmpfs", "/tmp", "tmpfs")
	mount("configfs", "/sys/kernel/config", "configfs")
	os.Setenv("PATH", "/bin")
	os.Setenv("HOME", "/tmp")
	fmt.Println("usblab: guest up, kernel", uname())
	args := cmdline()
	check("kernel loads dummy_hcd, libcomposite, usb_f_fs, usb_f_acm and cdc-acm", func() error {
		if err := loadModules(); err != nil {
			return err
		}
		mount("configfs", "/sys/kernel/config", "configfs")
		return waitFor("/sys/class/udc/dummy_udc.0", 5*time.Second)
	})
	debug = args["usblab.debug"] == "1"
	only := args["usblab.only"]
	for _, s := range scenarios {
		if only != "" && !strings.Contains(s.name, only) {
			continue
		}
		if s.bench && args["usblab.bench"] != "1" {
			continue
		}
		s.run()
	}
	fmt.Printf("USBLAB DONE: %d passed, %d failed\n", passed, failed)
	if args["usblab.shell"] == "1" {
		sh := exec.Command("/bin/busybox", "sh")
		sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
		sh.Run()
	}
	os.Stdout.Sync()
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

type scenario struct {
	name  string
	bench bool
	run   func()
}

var scenarios []scenario

func uname() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

func waitFor(path string, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s did not appear within %s", path, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostDevices lists what the host side enumerated: "2fe3:0100 ..." per device.
func hostDevices() []string {
	var out []string
	dirs, _ := filepath.Glob("/sys/bus/usb/devices/*-*")
	for _, d := range dirs {
		if strings.Contains(filepath.Base(d), ":") {
			continue
		}
		v, _ := os.ReadFile(d + "/idVendor")
		p, _ := os.ReadFile(d + "/idProduct")
		out = append(out, strings.TrimSpace(string(v))+":"+strings.TrimSpace(string(p)))
	}
	sort.Strings(out)
	return out
}

// waitHost waits until the host enumerated a device with id ("0483:df11") and usbfs has
// its node.
func waitHost(id string, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		for _, h := range hostDevices() {
			if h == id {
				time.Sleep(50 * time.Millisecond) // the usbfs node follows the sysfs entry
				return nil
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("the host did not enumerate %s within %s (it has %v)", id, d, hostDevices())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitGone(id string, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		found := false
		for _, h := range hostDevices() {
			found = found || h == id
		}
		if !found {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s is still on the bus after %s", id, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}
