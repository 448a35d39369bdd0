package flasher_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify"
)

func identity() *flasher.Identity {
	c := uint64(4)
	return &flasher.Identity{
		Protocol: "smp", HardwareID: "acme-gw-r2", Mode: "application", ReleaseCounter: &c,
		Components: map[string]string{"bootloader": "1.3.0", "radio": "0.9.2"},
		Slots: []flasher.Slot{
			{Image: 0, Slot: 0, Version: "1.4.0", Active: true, Confirmed: true, Size: 64 << 10},
			{Image: 0, Slot: 1, Size: 64 << 10},
		},
	}
}

func TestPlanRefusesWithThingReasonAndNextStep(t *testing.T) {
	payload := randomBytes(3, 4096)
	cases := []struct {
		name   string
		target string
		meta   func(*verify.TargetMeta)
		id     func(*flasher.Identity)
		opt    func(*flasher.PlanOptions)
		code   flasher.Code
		says   []string
	}{
		{name: "other hardware", meta: func(m *verify.TargetMeta) { m.HardwareIDs = []string{"acme-gw-r3"} },
			code: flasher.CodeHardware, says: []string{"no target for hardware acme-gw-r2", "app.bin for acme-gw-r3", "use the bundle made for acme-gw-r2"}},
		{name: "named target for other hardware", target: "app.bin", meta: func(m *verify.TargetMeta) { m.HardwareIDs = []string{"acme-gw-r3"} },
			code: flasher.CodeHardware, says: []string{"target app.bin", "fits acme-gw-r3"}},
		{name: "unknown target", target: "radio.bin",
			code: flasher.CodeNoTarget, says: []string{`no target "radio.bin"`, "it has app.bin"}},
		{name: "rollback", meta: func(m *verify.TargetMeta) { m.ReleaseCounter = 3 },
			code: flasher.CodeReleaseCounter, says: []string{"target app.bin", "release counter 3 is below the device's 4", "newer bundle"}},
		{name: "requirement unmet", meta: func(m *verify.TargetMeta) {
			m.Requires = []verify.Requirement{{Component: "bootloader", Version: ">=1.4.0 <2.0.0"}}
		}, code: flasher.CodeRequirement, says: []string{"requires bootloader >=1.4.0 <2.0.0, the device runs bootloader 1.3.0", "update bootloader first"}},
		{name: "requirement on unreported component", meta: func(m *verify.TargetMeta) {
			m.Requires = []verify.Requirement{{Component: "modem", Version: ">=1.0.0"}}
		}, code: flasher.CodeRequirement, says: []string{"does not report a modem version"}},
		{name: "slot too small", id: func(id *flasher.Identity) { id.Slots[1].Size = 2048 },
			code: flasher.CodeSlotSize, says: []string{"is 4096 bytes, slot 1 of image 0 holds 2048"}},
		{name: "protocol not allowed", meta: func(m *verify.TargetMeta) { m.Protocol.Protocols = []string{"dfu"} },
			code: flasher.CodeProtocol, says: []string{"may be flashed with dfu, but the device speaks smp", "dfu mode"}},
		{name: "no hardware id", id: func(id *flasher.Identity) { id.HardwareID = "" }, opt: func(o *flasher.PlanOptions) { o.Port = "COM4" },
			code: flasher.CodeHardware, says: []string{"device on COM4", "--hardware"}},
		{name: "hardware given disagrees", opt: func(o *flasher.PlanOptions) { o.HardwareID = "acme-gw-r1" },
			code: flasher.CodeWrongDevice, says: []string{`reports hardware "acme-gw-r2", not "acme-gw-r1"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			meta := appMeta()
			if c.meta != nil {
				c.meta(&meta)
			}
			v := bundleFile(t, payload, meta)
			id := identity()
			if c.id != nil {
				c.id(id)
			}
			var opt flasher.PlanOptions
			if c.opt != nil {
				c.opt(&opt)
			}
			p, err := flasher.NewPlan(v, c.target, id, opt)
			if err == nil {
				p.Close()
				t.Fatal("NewPlan accepted")
			}
			var fe *flasher.Error
			if !errors.As(err, &fe) || fe.Code != c.code || fe.Next == "" {
				t.Fatalf("got %#v, want code %s with a next step", err, c.code)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestPlanPicksTheTargetThatFitsTheDevice(t *testing.T) {
	app := randomBytes(5, 2000)
	radio := app[:1000] // a second target over the first bytes of the same payload
	v := bundleFile(t, app, appMeta())
	other := v.Targets[0]
	other.Path, other.Meta.HardwareIDs = "app-r3.bin", []string{"acme-gw-r3"}
	r := v.Targets[0]
	sum := sha256.Sum256(radio)
	r.Path, r.Meta.Component, r.Meta.Protocol.ImageSlot = "radio.bin", "radio", new(int)
	*r.Meta.Protocol.ImageSlot = 1
	r.Length, r.SHA256 = int64(len(radio)), hex.EncodeToString(sum[:])
	v.Targets = []verify.Target{other, v.Targets[0], r}

	id := identity()
	id.Slots = append(id.Slots, flasher.Slot{Image: 1, Slot: 0, Active: true}, flasher.Slot{Image: 1, Slot: 1, Size: 4096})
	p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Image.Name != "app.bin" || p.Image.Slot != 0 || p.Image.Version != "2.0.0" || p.Protocol != "smp" || p.Device != "acme-gw-r2" {
		t.Fatalf("picked %+v", p.Image)
	}
	p2, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{Component: "radio", Device: "SN7"})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if p2.Image.Name != "radio.bin" || p2.Image.Slot != 1 || p2.JournalKey().Device != "SN7" {
		t.Fatalf("picked %+v", p2.Image)
	}
}

func TestPlanAcceptsMetRequirementsAndEqualCounter(t *testing.T) {
	meta := appMeta()
	meta.ReleaseCounter = 4
	meta.Requires = []verify.Requirement{{Component: "bootloader", Version: ">=1.2.0 <2.0.0"}, {Component: "radio", Version: ">0.9.1"}}
	meta.ReleaseNotes = "Fixes the modem watchdog."
	meta.Advisories = []string{"ACME-SA-2026-07"}
	v := bundleFile(t, randomBytes(6, 100), meta)
	p, err := flasher.NewPlan(v, "", identity(), flasher.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Notes) != 2 || !strings.Contains(p.Notes[1], "ACME-SA-2026-07") {
		t.Fatalf("notes %q", p.Notes)
	}
}

func TestPlanRefusesBundleTruncatedAfterVerify(t *testing.T) {
	v := bundleFile(t, randomBytes(7, 5000), appMeta())
	v.Targets[0].Length += 4096 // as if the file on disk lost its tail
	_, err := flasher.NewPlan(v, "", identity(), flasher.PlanOptions{})
	if flasher.CodeOf(err) != flasher.CodeBundleChanged {
		t.Fatalf("got %v", err)
	}
}
