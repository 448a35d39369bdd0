//go:build unix

package cli

// These tests run the real binary against virtual devices started with the real
// `fieldflash sim` (a second process, as a technician would start it in another
// terminal), over real pseudo-terminals paced like a 115200-baud line.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fieldflash/fieldflash/assets"
)

// simProcess is `fieldflash sim` running in the background.
type simProcess struct {
	cmd   *exec.Cmd
	port  string
	state string
	out   *bytes.Buffer // read it after stop
	read  chan struct{} // closed when stdout ended
	once  sync.Once
}

// stop presses Ctrl-C in the simulator's terminal and waits for it to end.
func (s *simProcess) stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.read:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.read
		}
		s.cmd.Wait()
	})
}

func startSimProcess(t *testing.T, home string, args ...string) *simProcess {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"sim"}, args...)...)
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &simProcess{cmd: cmd, out: &bytes.Buffer{}, read: make(chan struct{})}
	t.Cleanup(s.stop)
	ready := make(chan error, 2)
	go func() {
		defer close(s.read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.out.WriteString(line + "\n")
			if p, ok := strings.CutPrefix(line, "port    "); ok {
				s.port = p
			}
			if st, ok := strings.CutPrefix(line, "state   "); ok {
				s.state = st
			}
			if strings.HasPrefix(line, "line ") {
				ready <- nil
			}
		}
		ready <- io.EOF
	}()
	select {
	case err := <-ready:
		if err != nil || s.port == "" {
			t.Fatalf("sim did not start: %v\n%s\n%s", err, s.out, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("sim did not print its port:\n%s\n%s", s.out, errb.String())
	}
	return s
}

func demoBundle(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "demo.fwb")
	if err := os.WriteFile(path, assets.DemoBundle, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// flashEvent is one JSON line of `fieldflash flash --json`.
type flashEvent struct {
	Step    string `json:"step"`
	Kind    string `json:"kind"`
	Bytes   int64  `json:"bytes"`
	OK      *bool  `json:"ok"`
	Exit    int    `json:"exit"`
	Code    string `json:"code"`
	Next    string `json:"next"`
	Outcome *struct {
		Result      string `json:"result"`
		Version     string `json:"version"`
		Running     string `json:"running"`
		ResumedFrom int64  `json:"resumed_from"`
		Bytes       int64  `json:"bytes"`
	} `json:"outcome"`
}

func lastLine(t *testing.T, out string) flashEvent {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ev flashEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.OK == nil {
		t.Fatalf("last line is not the result document: %v\n%s", err, out)
	}
	return ev
}

func TestCtrlCInTheMiddleOfAFlashThenTheSameCommandResumes(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	sim := startSimProcess(t, home, "smp", "--baud", "115200")
	bundle := demoBundle(t)

	// First run: interrupted with Ctrl-C (SIGINT) once 12 KiB are on the device.
	cmd := exec.Command(binary, "flash", bundle, "--port", sim.port, "--demo", "--json")
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		first.WriteString(sc.Text() + "\n")
		var ev flashEvent
		json.Unmarshal(sc.Bytes(), &ev)
		if !signalled && ev.Kind == "progress" && ev.Bytes >= 12<<10 {
			cmd.Process.Signal(syscall.SIGINT)
			signalled = true
		}
	}
	cmd.Wait()
	if !signalled {
		t.Fatalf("the transfer never reached 12 KiB:\n%s\n%s", first.String(), errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitCanceled {
		t.Fatalf("interrupted flash: exit %d, want %d\n%s\n%s", code, exitCanceled, first.String(), errb.String())
	}
	if ev := lastLine(t, first.String()); ev.Outcome == nil || ev.Outcome.Result != "interrupted" {
		t.Fatalf("interrupted flash: %+v", ev)
	}
	journals, _ := filepath.Glob(filepath.Join(home, "demo", "journal", "*.json"))
	if len(journals) != 1 {
		t.Fatalf("journals after the interruption: %v", journals)
	}

	// The same command again picks up at the device's offset and finishes.
	r := fieldflash(t, home, "", "flash", bundle, "--port", sim.port, "--demo", "--json")
	if r.code != exitOK {
		t.Fatalf("second run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ev := lastLine(t, r.stdout)
	if ev.Outcome == nil || ev.Outcome.Result != "confirmed" || ev.Outcome.Running != "1.1.0" {
		t.Fatalf("second run: %+v", ev.Outcome)
	}
	if ev.Outcome.ResumedFrom < 12<<10 || ev.Outcome.Bytes >= 48<<10 {
		t.Fatalf("second run resumed at %d and sent %d bytes; want it to start where the first stopped", ev.Outcome.ResumedFrom, ev.Outcome.Bytes)
	}
	t.Logf("resumed at %d, sent %d", ev.Outcome.ResumedFrom, ev.Outcome.Bytes)

	// And once more: nothing to do.
	r = fieldflash(t, home, "", "flash", bundle, "--port", sim.port, "--demo")
	if r.code != exitOK || !strings.Contains(r.stdout, "already runs") {
		t.Fatalf("third run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestFlashRefusesTheWrongHardwareBeforeWritingAnything(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	sim := startSimProcess(t, home, "smp", "--baud", "0", "--hardware", "acme-gw-r2")
	before := fileSum(t, sim.state)
	r := fieldflash(t, home, "", "flash", demoBundle(t), "--port", sim.port, "--demo", "--json")
	if r.code != exitRefused {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitRefused, r.stdout, r.stderr)
	}
	ev := lastLine(t, r.stdout)
	if ev.Code != "hardware" || ev.Next == "" || !strings.Contains(r.stderr, "acme-gw-r2") {
		t.Fatalf("refusal %+v\n%s", ev, r.stderr)
	}
	if after := fileSum(t, sim.state); after != before {
		t.Fatal("the device's flash changed although the update was refused")
	}
	// Without --json a person reads the same, and that nothing was written.
	r = fieldflash(t, home, "", "flash", demoBundle(t), "--port", sim.port, "--demo")
	if r.code != exitRefused || !strings.Contains(r.stderr, "nothing was written") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// vendorBundle pins the tamper corpus's root in home and returns a good bundle signed by
// it: a stand-in for a vendor's release, for tests about ports rather than bundles.
func vendorBundle(t *testing.T, home string) string {
	t.Helper()
	if r := fieldflash(t, home, "", "trust", "add", corpus+"root.json", "--name", "acme", "--yes"); r.code != exitOK {
		t.Fatalf("trust add: %d %s", r.code, r.stderr)
	}
	return corpus + "good_basic.fwb"
}

func TestFlashOnAPortThatDoesNotExistIsAnEnvironmentError(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	r := fieldflash(t, home, "", "flash", vendorBundle(t, home), "--port", "/dev/ttyNOPE9", "--protocol", "smp")
	if r.code != exitEnv || !strings.Contains(r.stderr, "/dev/ttyNOPE9") {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitEnv, r.stderr)
	}
}

// silentPort is a pseudo-terminal with nothing behind it: a board that is off, or a
// cable that carries only power.
func silentPort(t *testing.T) string {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	go io.Copy(io.Discard, master)
	return tty.Name()
}

func TestRecoverOnASilentPortSaysWhichButtonToHold(t *testing.T) {
	t.Parallel()
	port := silentPort(t)
	r := fieldflash(t, t.TempDir(), "", "recover", "--port", port)
	if r.code != exitDevice {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitDevice, r.stdout, r.stderr)
	}
	for _, want := range []string{"nothing answers on " + port, "BOOT", "UPDATE", "fieldflash recover --port " + port} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("recover lacks %q:\n%s", want, r.stderr)
		}
	}
	// flash on the same port says the same next step, and exits 4 too.
	home := t.TempDir()
	r = fieldflash(t, home, "", "flash", vendorBundle(t, home), "--port", port, "--protocol", "smp")
	if r.code != exitDevice || !strings.Contains(r.stderr, "BOOT") {
		t.Fatalf("flash on a silent port: exit %d\n%s", r.code, r.stderr)
	}
}

// Demo keys are public: a demo bundle goes onto virtual devices only, never real hardware.
func TestDemoBundleIsRefusedForARealPort(t *testing.T) {
	t.Parallel()
	port := silentPort(t)
	for _, cmd := range []string{"flash", "recover"} {
		args := []string{cmd, demoBundle(t), "--port", port, "--demo", "--protocol", "smp"}
		if cmd == "recover" {
			args = []string{cmd, "--port", port, demoBundle(t), "--demo", "--protocol", "smp"}
		}
		r := fieldflash(t, t.TempDir(), "", args...)
		if r.code != exitRefused || !strings.Contains(r.stderr, "virtual devices") {
			t.Errorf("%s --demo on a real port: exit %d\n%s", cmd, r.code, r.stderr)
		}
	}
	home := t.TempDir()
	if r := fieldflash(t, home, "", "trust", "add", "../assets/demo/root.json", "--yes"); r.code != exitRefused || !strings.Contains(r.stderr, "demo mode") {
		t.Errorf("pinning the demo root: exit %d\n%s", r.code, r.stderr)
	}
	r := fieldflash(t, home, "", "verify", demoBundle(t))
	if r.code != exitRefused || !strings.Contains(r.stderr, "demo mode") {
		t.Errorf("demo bundle outside demo mode: exit %d, want a refusal that names demo mode\n%s", r.code, r.stderr)
	}
}

func TestRecoverFlashesADeviceStartedInSerialRecovery(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	sim := startSimProcess(t, home, "smp", "--baud", "0", "--recovery")
	r := fieldflash(t, home, "", "recover", "--port", sim.port)
	if r.code != exitOK || !strings.Contains(r.stdout, "MCUboot serial recovery") || !strings.Contains(r.stdout, "--hardware") {
		t.Fatalf("recover without a bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	bundle := demoBundle(t)
	// Serial recovery does not say which board it is: recover will not guess.
	r = fieldflash(t, home, "", "recover", "--port", sim.port, bundle, "--demo")
	if r.code != exitRefused || !strings.Contains(r.stderr, "fieldflash-sim-smp") {
		t.Fatalf("recover without --hardware: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = fieldflash(t, home, "", "recover", "--port", sim.port, bundle, "--demo", "--hardware", "fieldflash-sim-smp")
	if r.code != exitOK || !strings.Contains(r.stdout, "now runs 1.1.0") {
		t.Fatalf("recover with a bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = fieldflash(t, home, "", "recover", "--port", sim.port)
	if r.code != exitOK || !strings.Contains(r.stdout, "the application runs") || !strings.Contains(r.stdout, "running 1.1.0") {
		t.Fatalf("after recovery: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestDevicesListsARunningSimulatorAndProbesIt(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	sim := startSimProcess(t, home, "ymodem", "--baud", "0")
	r := fieldflash(t, home, "", "devices", "--json", "--probe")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var list struct {
		Devices []struct {
			Path     string `json:"path"`
			Virtual  bool   `json:"virtual"`
			Protocol string `json:"protocol"`
			Probe    *struct {
				Protocol string `json:"protocol"`
				Identity struct {
					HardwareID string `json:"hardware_id"`
				} `json:"identity"`
			} `json:"probe"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	found := false
	for _, d := range list.Devices {
		if d.Path == sim.port {
			found = true
			if !d.Virtual || d.Protocol != "ymodem" || d.Probe == nil || d.Probe.Protocol != "ymodem" || d.Probe.Identity.HardwareID != "fieldflash-sim-ymodem" {
				t.Fatalf("the simulator's entry: %+v\n%s", d, r.stdout)
			}
		}
	}
	if !found {
		t.Fatalf("%s is not listed:\n%s", sim.port, r.stdout)
	}
	r = fieldflash(t, home, "", "devices")
	if r.code != exitOK || !strings.Contains(r.stdout, sim.port) || !strings.Contains(r.stdout, "virtual ymodem device") {
		t.Fatalf("devices: exit %d\n%s", r.code, r.stdout)
	}
}

func TestSimulatorKeepsItsFlashAcrossRestarts(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	bundle := demoBundle(t)
	sim := startSimProcess(t, home, "ymodem", "--baud", "0")
	r := fieldflash(t, home, "", "flash", bundle, "--port", sim.port, "--demo")
	if r.code != exitOK || !strings.Contains(r.stdout, "now runs 1.1.0 (installed; was 1.0.0)") {
		t.Fatalf("flash: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sim.stop()
	if !strings.Contains(sim.out.String(), "device runs 1.1.0") {
		t.Fatalf("sim's last words:\n%s", sim.out)
	}
	again := startSimProcess(t, home, "ymodem", "--baud", "0")
	if !strings.Contains(again.out.String(), "running application 1.1.0") {
		t.Fatalf("restarted sim:\n%s", again.out)
	}
}

// What a device reports (its hardware id here) reaches the terminal escaped: a hostile
// or broken device cannot clear the screen or fake a line.
func TestDeviceReportedTextIsEscapedOnTheTerminal(t *testing.T) {
	home := t.TempDir()
	sim := startSimProcess(t, home, "smp", "--baud", "0", "--hardware", "evil\x1b[2J\x1b[32mhw")
	r := fieldflash(t, home, "", "devices", "--probe")
	if r.code != exitOK {
		t.Fatalf("devices: exit %d %s", r.code, r.stderr)
	}
	noTerminalControls(t, "devices --probe", r.stdout)
	if !strings.Contains(r.stdout, `evil\x1b[2J\x1b[32mhw on `+sim.port) {
		t.Fatalf("devices --probe does not show the hardware id escaped:\n%s", r.stdout)
	}
}
