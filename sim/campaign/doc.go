// Package campaign is the fault campaign: hundreds of seeded updates, each through the
// real engine (flasher.Run), the real drivers (flasher/smp, flasher/ymodem), a real
// journal and a real pseudo-terminal cable (sim/link) to a virtual device (sim/smpdev on
// the MCUboot flash model sim/flash, or sim/ymodemdev), with one fault drawn from the seed:
// lost bytes, flipped bits, a stall, a pulled cable, a device reset, a power loss at a
// random byte of flash, or the app killed mid-run. Every run must end with the device
// booting the new image or the old one, nothing confirmed before a passing probe, and an
// interrupted update finished by running it again.
//
// It also holds the benchmarks that span packages (resume after an interruption at 90 %,
// YMODEM against lrzsz's sb over the simulator's own cable).
//
//	go test ./sim/campaign/                                        # 200 runs
//	FIELDFLASH_CAMPAIGN_RUNS=5000 go test -timeout 1h -v ./sim/campaign/
//	FIELDFLASH_CAMPAIGN_SEED=1234 go test -run TestFaultCampaign -v ./sim/campaign/  # replay one seed
//	FIELDFLASH_BENCH=1 go test -run Bench -v ./sim/campaign/
//
// There is no non-test code: the campaign is a test, and the parts it runs are the
// product's own.
package campaign
