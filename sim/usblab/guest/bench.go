//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/sim/dfudev"
)

func init() {
	scenarios = append(scenarios, scenario{name: "bench", bench: true, run: benchScenarios})
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// fieldflashDownload times fieldflash's driver downloading img to the device m.
func fieldflashDownload(m dfu.Match, img *flasher.Image) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := dfu.OpenUSB(ctx, m)
	if err != nil {
		return 0, err
	}
	d := dfu.New(c, dfu.Options{NoReadBack: true})
	defer d.Close()
	n, err := d.Write(ctx, img, 0, nil)
	if err != nil {
		return 0, err
	}
	if n != img.Size {
		return 0, fmt.Errorf("wrote %d of %d bytes", n, img.Size)
	}
	return time.Since(start), nil
}

func dfuUtilDownload(args ...string) (time.Duration, error) {
	start := time.Now()
	_, err := dfuUtil(args...)
	return time.Since(start), err
}

// benchPair downloads the same image with dfu-util and fieldflash, alternating, runs
// times each, and prints the medians, their ratio, and how many requests the twin
// answered for each tool's last run.
func benchPair(name string, size int, runs int, dev *dfudev.Device, util func() (time.Duration, error), ff func() (time.Duration, error)) error {
	var u, f []time.Duration
	var ru, rf int
	for range runs {
		before := dev.Stats().Requests
		du, err := util()
		if err != nil {
			return err
		}
		mid := dev.Stats().Requests
		df, err := ff()
		if err != nil {
			return err
		}
		u, f = append(u, du), append(f, df)
		ru, rf = mid-before, dev.Stats().Requests-mid
	}
	mu, mf := median(u), median(f)
	rate := func(d time.Duration) float64 { return float64(size) / 1024 / d.Seconds() }
	fmt.Printf("BENCH usb_%s_dfuutil_%dk %.1f KiB/s\n", name, size/1024, rate(mu))
	fmt.Printf("BENCH usb_%s_fieldflash_%dk %.1f KiB/s\n", name, size/1024, rate(mf))
	fmt.Printf("BENCH usb_%s_fieldflash_vs_dfuutil %.2f ratio\n", name, mu.Seconds()/mf.Seconds())
	fmt.Printf("BENCH usb_%s_dfuutil_requests_%dk %d requests\n", name, size/1024, ru)
	fmt.Printf("BENCH usb_%s_fieldflash_requests_%dk %d requests\n", name, size/1024, rf)
	return nil
}

func memImage(name string, b []byte, slot int, addr *uint64) *flasher.Image {
	return &flasher.Image{Name: name, Size: int64(len(b)), SHA256: sha256.Sum256(b), Slot: slot, Address: addr, Data: bytes.NewReader(b)}
}

func benchScenarios() {
	const size = 64 * 1024
	img := pattern(size, 9)
	write("/tmp/bench.bin", img)

	dev, g, err := serve(dfudev.Options{Profile: dfudev.ProfileZephyr, StartInDFU: true, TimeScale: 1}, "2fe3:ffff")
	check("bench: DFU 1.1 download, fieldflash and dfu-util on the same Zephyr twin and image (median of 3)", func() error {
		if err != nil {
			return err
		}
		return benchPair("dfu", size, 3, dev,
			func() (time.Duration, error) {
				return dfuUtilDownload("-d", "2fe3:ffff", "-a", "1", "-D", "/tmp/bench.bin")
			},
			func() (time.Duration, error) {
				return fieldflashDownload(dfu.Match{VendorID: 0x2fe3, ProductID: 0xffff}, memImage("bench.bin", img, 1, nil))
			})
	})
	if err == nil {
		unserve(dev, g)
	}

	dev, g, err = serve(dfudev.Options{Profile: dfudev.ProfileSTM32, TimeScale: 1}, "0483:df11")
	check("bench: DfuSe download, fieldflash and dfu-util on the same STM32 twin and image (median of 3)", func() error {
		if err != nil {
			return err
		}
		addr := uint64(0x08000000)
		return benchPair("dfuse", size, 3, dev,
			func() (time.Duration, error) {
				return dfuUtilDownload("-d", "0483:df11", "-a", "0", "-s", "0x08000000", "-D", "/tmp/bench.bin")
			},
			func() (time.Duration, error) { return fieldflashDownload(stm32, memImage("bench.bin", img, 0, &addr)) })
	})
	if err == nil {
		unserve(dev, g)
	}
}
