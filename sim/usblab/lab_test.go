package usblab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kernelDir is where .ci/usblab-kernel unpacked Debian's kernel package.
func kernelDir() string {
	if d := os.Getenv("FIELDFLASH_USBLAB_KERNEL"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "fieldflash-usblab", "kernel")
}

// libsOf lists the shared libraries (and the dynamic loader) a binary needs, by ldd.
func libsOf(t *testing.T, bin string) []string {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	var libs []string
	re := regexp.MustCompile(`(/[^ ]+\.so[^ ]*)`)
	for _, l := range strings.Split(string(out), "\n") {
		if m := re.FindString(l); m != "" {
			libs = append(libs, m)
		}
	}
	return libs
}

// TestUSBLab boots the lab VM and reports every check the guest ran as a subtest.
func TestUSBLab(t *testing.T) {
	if os.Getenv("FIELDFLASH_USBLAB") != "1" {
		t.Skip("the USB lab runs with FIELDFLASH_USBLAB=1 (make usblab; it needs qemu-system-x86, dfu-util, libusb-1.0-0-dev and the kernel .ci/usblab-kernel fetches)")
	}
	kdir := kernelDir()
	vmlinuz, _ := filepath.Glob(filepath.Join(kdir, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		t.Fatalf("no kernel in %s: run .ci/usblab-kernel (make usblab does)", kdir)
	}
	modDir, _ := filepath.Glob(filepath.Join(kdir, "lib", "modules", "*"))
	if len(modDir) != 1 {
		t.Fatalf("no modules in %s", kdir)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: install qemu-system-x86 (.ci/deps does)")
	}
	dfuUtil, err := exec.LookPath("dfu-util")
	if err != nil {
		t.Fatal("dfu-util not found: install dfu-util (.ci/deps does)")
	}
	dir := t.TempDir()
	guest := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-o", guest, "./guest")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the guest with cgo (needs gcc and libusb-1.0-0-dev): %v\n%s", err, out)
	}
	// fieldflash itself, the full build (cgo, libusb), for its devices command.
	ff := filepath.Join(dir, "fieldflash")
	build = exec.Command("go", "build", "-o", ff, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building fieldflash with cgo: %v\n%s", err, out)
	}
	fs := Initramfs{"/init": guest, "/bin/dfu-util": dfuUtil, "/bin/fieldflash": ff}
	if _, err := os.Stat("/bin/busybox"); err == nil {
		fs["/bin/busybox"] = "/bin/busybox" // busybox-static: a shell for looking around (usblab.shell=1)
	}
	for _, bin := range []string{guest, dfuUtil, ff} {
		for _, l := range libsOf(t, bin) {
			fs[l] = l
		}
	}
	for _, m := range []string{"usb-common", "usbcore", "udc-core", "configfs", "libcomposite", "dummy_hcd", "usb_f_fs", "u_serial", "usb_f_acm", "cdc-acm"} {
		found, _ := filepath.Glob(filepath.Join(modDir[0], "kernel", "*", "**", m+".ko.xz"))
		if len(found) == 0 {
			filepath.WalkDir(modDir[0], func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Name() == m+".ko.xz" {
					found = append(found, p)
				}
				return nil
			})
		}
		if len(found) == 0 {
			t.Fatalf("module %s not in %s", m, modDir[0])
		}
		fs["/lib/modules/"+m+".ko.xz"] = found[0]
	}
	vectors, _ := filepath.Glob("../../testdata/dfu/*.dfu")
	inputs, _ := filepath.Glob("../../testdata/dfu/input/*")
	for _, v := range append(vectors, inputs...) {
		rel, _ := filepath.Rel("../../testdata", v)
		fs["/lab/"+rel] = v
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	appendArgs := "console=ttyS0 loglevel=4 panic=-1 rdinit=/init"
	if os.Getenv("FIELDFLASH_BENCH") == "1" {
		appendArgs += " usblab.bench=1"
	}
	if os.Getenv("USBLAB_DEBUG") == "1" {
		appendArgs += " usblab.debug=1"
	}
	if o := os.Getenv("USBLAB_ONLY"); o != "" {
		appendArgs += " usblab.only=" + o
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", vmlinuz[0], "-initrd", initrd, "-append", appendArgs, "-nic", "none")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // the VM dies with the test
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	var log []string
	// The console as it comes, for a look while the lab runs.
	consoleFile, _ := os.Create(filepath.Join(os.TempDir(), "fieldflash-usblab-console.log"))
	defer consoleFile.Close()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		log = append(log, line)
		fmt.Fprintln(consoleFile, line)
		switch {
		case strings.HasPrefix(line, "USBLAB PASS "):
			name := strings.TrimPrefix(line, "USBLAB PASS ")
			t.Run(name, func(t *testing.T) {})
		case strings.HasPrefix(line, "USBLAB FAIL "):
			name, why, _ := strings.Cut(strings.TrimPrefix(line, "USBLAB FAIL "), ": ")
			t.Run(name, func(t *testing.T) { t.Error(why) })
		case strings.HasPrefix(line, "BENCH "):
			fmt.Println(line)
		case strings.HasPrefix(line, "    ") && len(log) > 1:
			t.Log(line)
		case strings.HasPrefix(line, "USBLAB DONE"):
			done = true
			t.Logf("%s (VM ran %.0f s)", line, time.Since(start).Seconds())
		}
	}
	cmd.Wait()
	if !done {
		t.Fatalf("the lab VM ended without its verdict after %.0f s; console:\n%s", time.Since(start).Seconds(), strings.Join(tail(log, 60), "\n"))
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("console:\n%s", strings.Join(tail(log, 200), "\n"))
	}
}

func tail(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}
