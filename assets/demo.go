package assets

import _ "embed"

// DemoRoot is the root of the demo repository "fieldflash-demo". Its keys are derived from
// public seeds (assets/internal/demogen), so it is trusted in demo mode only.
//
//go:embed demo/root.json
var DemoRoot []byte

// DemoBundle is the demo bundle: one MCUboot image for the virtual SMP device and one raw
// image for the virtual YMODEM bootloader, signed by the demo root.
//
//go:embed demo/demo.fwb
var DemoBundle []byte

// DemoRepository is the repository name the demo root carries.
const DemoRepository = "fieldflash-demo"
