//go:build cgo

package ui

import (
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "devices", Title: "Devices", Icon: theme.IconNameComputer, Order: 20, Modes: []string{app.ModeTechnician}, View: devicesScreen})
}

// devicesScreen is the live device list: a device that appears or goes away shows
// within about a second. Each row says what the port is, what answers on it, and
// whether the open bundle fits it; ticking rows picks them for the next update.
func devicesScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	list := container.NewVBox()
	picked := widget.NewLabel("")
	update := newPrimary("Update the picked devices", theme.MediaPlayIcon(), func() { sh.Show("update") })
	pickFit := newButton("Pick every device the bundle fits", theme.ConfirmIcon(), func() {
		for _, r := range st.Rows() {
			if r.Fit != nil && r.Fit.OK && !r.Fit.Current {
				st.Toggle(r.Port.Path, true)
			}
		}
	})
	draw := func() {
		rows := st.Rows()
		sel := st.Picked()
		var objs []fyne.CanvasObject
		if len(rows) == 0 {
			objs = append(objs, wrapLabel("No devices found. Plug the device in with a data cable (not a charge-only one): serial ports, and USB devices in DFU mode or with a DFU run-time interface, show here within a second."))
		}
		for _, r := range rows {
			if r.USB != nil {
				objs = append(objs, usbRow(sh, r, slices.Contains(sel, r.Key())), widget.NewSeparator())
				continue
			}
			objs = append(objs, deviceRow(st, r, slices.Contains(sel, r.Port.Path)), widget.NewSeparator())
		}
		list.Objects = objs
		list.Refresh()
		switch len(sel) {
		case 0:
			picked.SetText("No device picked.")
			update.Disable()
		case 1:
			picked.SetText("1 device picked.")
			update.Enable()
		default:
			picked.SetText(strconv.Itoa(len(sel)) + " devices picked: they are updated at once, each on its own.")
			update.Enable()
		}
	}
	st.Devices.AddListener(bindingListener(draw))
	st.Selected.AddListener(bindingListener(draw))
	draw()
	picked.Wrapping = fyne.TextWrapWord
	top := container.NewVBox(container.NewHBox(pickFit, update), picked)
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, container.NewVScroll(container.NewPadded(list)))
}

func deviceRow(st *State, r *DeviceRow, on bool) fyne.CanvasObject {
	port := r.Port.Path
	check := widget.NewCheck(safe(r.Name()), func(b bool) { st.Toggle(port, b) })
	check.SetChecked(on)
	var facts []string
	facts = append(facts, port)
	switch {
	case r.Port.Virtual:
		facts = append(facts, "virtual "+r.Port.Protocol+" device")
	case r.Port.USB:
		facts = append(facts, "USB "+r.Port.VID+":"+r.Port.PID)
		for _, s := range []string{r.Port.Manufacturer, r.Port.Product} {
			if s != "" {
				facts = append(facts, s)
			}
		}
		if r.Port.SerialNumber != "" {
			facts = append(facts, "serial "+r.Port.SerialNumber)
		}
	default:
		facts = append(facts, "serial port")
	}
	what := "Not asked yet: press “Ask what it runs” (it sends an SMP echo and a newline; nothing is written or reset)"
	switch p := r.Probe; {
	case r.Probing:
		what = "Asking what answers…"
	case p == nil:
	case p.Error != "":
		what = p.Error
	case p.Protocol == "":
		what = "Nothing answers (SMP, YMODEM). If it should, see Recovery."
	default:
		what = app.DescribeIdentity(p.Identity, port)
	}
	fit := fitText(r.Fit)
	label := "Ask again"
	if r.Probe == nil {
		label = "Ask what it runs"
	}
	ask := newButton(label, theme.ViewRefreshIcon(), func() { st.Probe(port) })
	info := container.NewVBox(check, wrapLabel(safe(strings.Join(facts, " · "))), wrapLabel(safe(what)))
	if fit != "" {
		info.Add(wrapLabel(safe(fit)))
	}
	return container.NewBorder(nil, nil, nil, container.NewVBox(ask), info)
}

// fitText says whether the open bundle fits the row's device.
func fitText(f *app.Fit) string {
	switch {
	case f == nil:
		return ""
	case f.OK && f.Current:
		return "✔ already runs " + f.Version
	case f.OK && f.Running == "unknown":
		return "✔ the bundle fits: it puts " + f.Version + " (" + f.Target + ") on it"
	case f.OK:
		return "✔ the bundle fits: " + f.Running + " to " + f.Version
	}
	return "✘ the bundle does not fit: " + f.Reason
}

// usbRow is a USB DFU device: what its descriptors say (ids, mode, DFU version, alternate
// settings and DfuSe memory layouts), which state it reports when asked, and whether the
// open bundle fits it (by its USB ids and memory, without a request).
func usbRow(sh *Shell, r *DeviceRow, on bool) fyne.CanvasObject {
	st := sh.State
	key := r.Key()
	d := r.USB
	check := widget.NewCheck(safe(r.Name()), func(b bool) { st.Toggle(key, b) })
	check.SetChecked(on)
	who, dfuLine, alts := d.Facts()
	info := container.NewVBox(check, wrapLabel(safe(who)), wrapLabel(safe(dfuLine)))
	for _, a := range alts {
		info.Add(wrapLabel(safe(a)))
	}
	what := "Not asked yet: press “Ask its state” (it asks the DFU state; nothing is written or reset)"
	switch {
	case r.Probing:
		what = "Asking the device its DFU state…"
	case r.Probe != nil && r.Probe.Error != "":
		what = r.Probe.Error
	case r.USBState != nil:
		what = r.USBState.Text
		if s := r.USBState.DFU; s != nil && s.Status != "" {
			what += ". " + s.StatusNext
		}
	}
	info.Add(wrapLabel(safe(what)))
	if fit := fitText(r.Fit); fit != "" {
		info.Add(wrapLabel(safe(fit)))
	}
	label := "Ask again"
	if r.Probe == nil {
		label = "Ask its state"
	}
	ask := newButton(label, theme.ViewRefreshIcon(), func() { st.Probe(key) })
	buttons := container.NewVBox(ask)
	if r.USBState != nil && r.USBState.State != app.StateDFURuntime {
		// A device waiting in DFU mode (or stopped in dfuERROR) is what recovery is for.
		buttons.Add(newButton("Recover it", theme.HelpIcon(), func() { sh.OpenRecovery(key) }))
	}
	return container.NewBorder(nil, nil, nil, buttons, info)
}
