//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"time"

	bugst "go.bug.st/serial"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/sim/usblab"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/transports/serial"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

func init() {
	scenarios = append(scenarios, scenario{name: "acm", run: acmScenarios})
}

// acmScenarios serve the SMP twin on an ACM gadget (the board's USB CDC console) and flash
// it through the host's /dev/ttyACM0, found by its USB ids.
func acmScenarios() {
	var g *usblab.Gadget
	var dev *smpdev.Device
	var path string
	check("the SMP twin on a CDC ACM gadget is found by VID:PID through go.bug.st/serial's enumerator", func() error {
		var err error
		g, err = usblab.NewGadget("acm", 0x2fe3, 0x0004, 0x0100, "ZEPHYR", "Zephyr SMP over CDC ACM", "SMP0042", "acm.usb0")
		if err != nil {
			return err
		}
		if err := g.Bind(); err != nil {
			return err
		}
		if err := waitFor("/dev/ttyGS0", 5*time.Second); err != nil {
			return err
		}
		if err := waitFor("/dev/ttyACM0", 10*time.Second); err != nil {
			return err
		}
		fl, err := flash.Create("/tmp/smp.flash", flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x4000}, []byte("MCUboot"), flash.Options{NoSync: true})
		if err != nil {
			return err
		}
		if err := fl.Program(flash.Primary, 0, smpImage("1.0.0")); err != nil {
			return err
		}
		dev, err = smpdev.New(fl, smpdev.Options{HardwareID: "acme-gw-r2"})
		if err != nil {
			return err
		}
		gs, err := serial.Open("/dev/ttyGS0", 115200)
		if err != nil {
			return err
		}
		go smpdev.Serve(context.Background(), gs, dev)
		ports, err := transports.List()
		if err != nil {
			return err
		}
		for _, p := range ports {
			if p.USB && p.VID == "2fe3" && p.PID == "0004" && p.SerialNumber == "SMP0042" {
				path = p.Path
			}
		}
		if path != "/dev/ttyACM0" {
			return fmt.Errorf("no 2fe3:0004 SMP0042 among %+v", ports)
		}
		return nil
	})
	if path == "" {
		return
	}
	check("DTR and RTS are real modem lines on /dev/ttyACM0 (a pseudo-terminal refuses them)", func() error {
		p, err := bugst.Open(path, &bugst.Mode{BaudRate: 115200})
		if err != nil {
			return err
		}
		defer p.Close()
		for _, f := range []func(bool) error{p.SetDTR, p.SetRTS} {
			for _, on := range []bool{true, false, true} {
				if err := f(on); err != nil {
					return err
				}
			}
		}
		if _, err := p.GetModemStatusBits(); err != nil {
			return fmt.Errorf("modem status: %v", err)
		}
		return nil
	})
	check("fieldflash flashes the SMP twin over /dev/ttyACM0: upload, test, reset, probe, confirm", func() error {
		img := smpImage("2.0.0")
		m, err := mcuboot.Parse(bytesReader(img), int64(len(img)))
		if err != nil {
			return err
		}
		v := bundle("smp", img, verify.TargetMeta{Format: "mcuboot"})
		v.Targets[0].Meta.HardwareIDs = []string{"acme-gw-r2"}
		v.Targets[0].Meta.Protocol.Protocols = []string{"smp"}
		v.Targets[0].Image = &verify.ImageInfo{Format: "mcuboot", ImageHash: hex.EncodeToString(m.ImageHash)}
		open := func() (flasher.Driver, error) {
			p, err := serial.Open(path, 115200)
			if err != nil {
				return nil, err
			}
			p.SetReadTimeout(20 * time.Millisecond)
			return smp.New(p, smp.Options{}), nil
		}
		d, err := open()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		id, err := d.Identify(ctx)
		if err != nil {
			d.Close()
			return err
		}
		p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{Device: "acme-gw-r2/SMP0042", Port: path,
			Reconnect: func(ctx context.Context) (flasher.Driver, error) { return open() }})
		if err != nil {
			d.Close()
			return err
		}
		defer p.Close()
		var ev eventLog
		out, err := flasher.Run(ctx, p, d, nil, ev.event)
		if err != nil || out.Result != flasher.ResultConfirmed {
			return fmt.Errorf("%v %v\n%s", out.Result, err, ev.String())
		}
		if dev.Mode() != flash.ModeApplication {
			return fmt.Errorf("device in %s", dev.Mode())
		}
		return nil
	})
	g.Unbind()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func smpImage(version string) []byte {
	v, _ := mcuboot.ParseVersion(version)
	img, err := mcuboot.Build(pattern(20000, 3), mcuboot.BuildOptions{Version: v})
	if err != nil {
		panic(err)
	}
	return img
}
