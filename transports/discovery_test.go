package transports

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/creack/pty"
)

func TestListShowsAnAnnouncedVirtualDevice(t *testing.T) {
	t.Setenv(HomeEnv, t.TempDir())
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	stable := filepath.Join(t.TempDir(), "ttySIM0")
	if err := os.Symlink(s.Name(), stable); err != nil {
		t.Fatal(err)
	}
	withdraw, err := Announce(Announcement{Path: stable, Protocol: "smp", Name: "sim-smp-0"})
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := SimDir()
	if _, err := os.Stat(filepath.Join(dir, "sim-smp-0.json")); err != nil {
		t.Errorf("announcement file: %v", err)
	}
	ports, err := List()
	if err != nil {
		t.Fatal(err)
	}
	want := PortInfo{Path: stable, Virtual: true, Protocol: "smp", Name: "sim-smp-0"}
	if !containsPort(ports, want) {
		t.Fatalf("List() = %+v; want it to include %+v", ports, want)
	}
	if err := withdraw(); err != nil {
		t.Fatal(err)
	}
	ports, err = List()
	if err != nil {
		t.Fatal(err)
	}
	if containsPort(ports, want) {
		t.Fatalf("List() after withdrawing still shows %s", stable)
	}
}

func TestListSkipsADeadSimulatorsAnnouncement(t *testing.T) {
	t.Setenv(HomeEnv, t.TempDir())
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	// A process that has exited: its pty number may already serve someone's shell.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := Announce(Announcement{Path: s.Name(), Protocol: "ymodem", Name: "dead", PID: cmd.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	// And one whose path is gone.
	if _, err := Announce(Announcement{Path: "/dev/pts/does-not-exist", Protocol: "smp", Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	// And a broken file, which must not hide the live device beside it.
	dir, _ := SimDir()
	os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{\"path\": 7"), 0o600)
	if _, err := Announce(Announcement{Path: s.Name(), Protocol: "smp", Name: "live"}); err != nil {
		t.Fatal(err)
	}
	ports, err := List()
	if err != nil {
		t.Fatal(err)
	}
	var virtual []string
	for _, p := range ports {
		if p.Virtual {
			virtual = append(virtual, p.Name)
		}
	}
	if !reflect.DeepEqual(virtual, []string{"live"}) {
		t.Fatalf("virtual devices listed: %q; want only \"live\"", virtual)
	}
}

func TestListWithoutAnyVirtualDevicesIsNotAnError(t *testing.T) {
	t.Setenv(HomeEnv, filepath.Join(t.TempDir(), "never-created"))
	if _, err := List(); err != nil {
		t.Fatalf("List() with no sim directory: %v", err)
	}
}

func TestParseAnnouncementRefusesNonsense(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"path":"ttySIM0","protocol":"smp","pid":1}`, "absolute path"},
		{`{"path":"/tmp/ttySIM0","protocol":"SMP over UDP","pid":1}`, "protocol"},
		{`{"path":"/tmp/ttySIM0","protocol":"smp","pid":-1}`, "negative"},
		{`{"path":"/tmp/ttySIM0","protocol":"smp","pid":1,"extra":true}`, "unknown field"},
		{`{"path":"/tmp/ttySIM0","protocol":"smp","pid":1}}`, "trailing"},
		{`[]`, "not an announcement"},
	} {
		if _, err := ParseAnnouncement([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAnnouncement(%s) = %v; want an error about %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseAnnouncement(f *testing.F) {
	f.Add([]byte(`{"path":"/home/ana/.config/fieldflash/sim/ttySIM0","protocol":"smp","name":"sim-smp-0","pid":4242}`))
	f.Add([]byte(`{"path":"/dev/pts/3","protocol":"ymodem","pid":0,"hardware_id":"acme-x1"}`))
	f.Add([]byte(`{"path":"/tmp/x","protocol":"smp","pid":1} {}`))
	f.Add([]byte(`{"path":"\u0000","protocol":"smp"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnnouncement(b)
		if err != nil {
			return
		}
		if !filepath.IsAbs(a.Path) || a.Protocol == "" || a.PID < 0 {
			t.Fatalf("accepted an invalid announcement %+v", a)
		}
	})
}

func containsPort(ports []PortInfo, want PortInfo) bool {
	for _, p := range ports {
		if p == want {
			return true
		}
	}
	return false
}
