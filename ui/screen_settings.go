//go:build cgo

package ui

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "settings", Title: "Settings", Icon: theme.IconNameSettings, Order: 90, Modes: []string{app.ModeTechnician}, View: settingsScreen})
}

var baudRates = []string{"9600", "19200", "38400", "57600", "115200", "230400", "460800", "921600", "1000000"}

var protocolChoices = map[string]string{"Ask the device (SMP, then YMODEM)": "", "SMP (MCUmgr)": "smp", "YMODEM bootloader": "ymodem"}

// settingsScreen: trust roots (import with fingerprint confirmation, remove), serial
// defaults, mode and theme. Changes apply at once and are kept in $FIELDFLASH_HOME.
func settingsScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	roots := container.NewVBox()
	var drawRoots func()
	drawRoots = func() {
		roots.Objects = rootRows(sh, drawRoots)
		roots.Refresh()
	}
	st.TrustRev.AddListener(bindingListener(drawRoots))
	importRoot := newButton("Import a trust root…", theme.ContentAddIcon(), func() { sh.importRootDialog(drawRoots) })

	set := st.Settings
	save := func() {
		if err := st.SaveSettings(set); err != nil {
			dialog.ShowError(err, sh.Window)
		}
		applyTheme(set.Theme)
	}
	baud := widget.NewSelect(baudRates, func(s string) {
		if n, err := strconv.Atoi(s); err == nil && n != set.Baud {
			set.Baud = n
			save()
		}
	})
	baud.SetSelected(strconv.Itoa(set.Baud))
	var protoNames []string
	for k := range protocolChoices {
		protoNames = append(protoNames, k)
	}
	protoNames = []string{"Ask the device (SMP, then YMODEM)", "SMP (MCUmgr)", "YMODEM bootloader"}
	proto := widget.NewSelect(protoNames, func(s string) {
		if p := protocolChoices[s]; p != set.Protocol {
			set.Protocol = p
			save()
		}
	})
	for k, v := range protocolChoices {
		if v == set.Protocol {
			proto.SetSelected(k)
		}
	}
	ask := widget.NewCheck("Ask new USB devices what they run (a few harmless bytes; nothing is written or reset)", func(b bool) {
		if b != set.AskDevices {
			set.AskDevices = b
			save()
		}
	})
	ask.SetChecked(set.AskDevices)
	modeNames := map[string]string{"Technician: every screen": app.ModeTechnician, "Simple: one device, one button (for end users)": app.ModeSimple}
	mode := widget.NewRadioGroup([]string{"Technician: every screen", "Simple: one device, one button (for end users)"}, func(s string) {
		if m := modeNames[s]; m != "" && m != set.Mode {
			set.Mode = m
			save()
		}
	})
	for k, v := range modeNames {
		if v == set.Mode {
			mode.SetSelected(k)
		}
	}
	themeNames := map[string]string{"Follow the system": app.ThemeSystem, "Light": app.ThemeLight, "Dark": app.ThemeDark}
	th := widget.NewRadioGroup([]string{"Follow the system", "Light", "Dark"}, func(s string) {
		if t := themeNames[s]; t != "" && t != set.Theme {
			set.Theme = t
			save()
		}
	})
	for k, v := range themeNames {
		if v == set.Theme {
			th.SetSelected(k)
		}
	}
	th.Horizontal = true
	return container.NewVScroll(container.NewPadded(container.NewVBox(
		widget.NewCard("Trust roots", "Only bundles that chain to a root pinned here verify.", container.NewVBox(roots, importRoot)),
		widget.NewCard("Serial defaults", "", widget.NewForm(
			widget.NewFormItem("Baud rate", baud),
			widget.NewFormItem("Protocol", proto),
			widget.NewFormItem("", ask))),
		widget.NewCard("Mode", "", mode),
		widget.NewCard("Theme", "", th),
		widget.NewLabel("Settings are kept in "+filepath.Join(st.Home(), "settings.json")),
	)))
}

func rootRows(sh *Shell, redraw func()) []fyne.CanvasObject {
	store, err := app.OpenTrustStore(sh.State.Home())
	if err != nil {
		return []fyne.CanvasObject{wrapLabel(err.Error())}
	}
	list, err := store.List()
	if err != nil {
		return []fyne.CanvasObject{wrapLabel(err.Error())}
	}
	if len(list) == 0 {
		return []fyne.CanvasObject{wrapLabel("No roots are pinned: no bundle will verify. Import your vendor's root.json.")}
	}
	var out []fyne.CanvasObject
	for _, r := range list {
		line := fmt.Sprintf("%s · root v%d · expires %s", r.Name, r.Version, r.Expires.Local().Format("2006-01-02"))
		if r.Source != "" {
			line += " · " + string(r.Source)
		}
		var keys []string
		for _, k := range r.Keys {
			keys = append(keys, short(k.Fingerprint, 16)+" ("+k.Type+")")
		}
		row := container.NewVBox(boldLabel(safe(line)), wrapLabel("Keys: "+safe(strings.Join(keys, ", "))))
		if r.Source == app.SourceUser || r.Source == "" {
			name := r.Name
			rm := newButton("Remove", theme.DeleteIcon(), func() {
				dialog.ShowConfirm("Remove the trust root "+name+"?",
					"Bundles signed under "+name+" will no longer verify on this computer, and what was learned under it is forgotten.",
					func(ok bool) {
						if !ok {
							return
						}
						if err := store.Remove(name); err != nil {
							dialog.ShowError(err, sh.Window)
							return
						}
						sh.State.ReopenSession()
						redraw()
					}, sh.Window)
			})
			out = append(out, container.NewBorder(nil, nil, nil, rm, row))
		} else {
			out = append(out, row)
		}
	}
	return out
}

// importRootDialog reads a root.json, shows its key fingerprints and pins it only when
// the person confirms they match what the vendor published.
func (sh *Shell) importRootDialog(done func()) {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, 1<<20))
		path := r.URI().Path()
		r.Close()
		if err != nil {
			dialog.ShowError(fmt.Errorf("root %s: %v", path, err), sh.Window)
			return
		}
		sh.confirmRoot(path, data, done)
	}, sh.Window)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".json"}))
	d.Resize(fyne.NewSize(800, 520))
	d.Show()
}

// confirmRoot shows a root's fingerprints and pins it when confirmed.
func (sh *Shell) confirmRoot(path string, data []byte, done func()) {
	sum, err := app.InspectRoot(data, "")
	if err != nil {
		dialog.ShowError(fmt.Errorf("root %s: %v", path, err), sh.Window)
		return
	}
	// The name is the root's own (kept as the vendor wrote it), else its file name; a
	// standard TUF file name (root.json, 1.root.json) says nothing of the vendor and would
	// collide with another vendor's, so then the person names the repository, as the CLI's
	// --name does.
	name := widget.NewEntry()
	name.SetPlaceHolder("the vendor's repository name, e.g. acme")
	if sum.Name != "" {
		name.SetText(sum.Name)
		name.Disable()
	} else if n, err := app.NameFromFile(path); err == nil {
		name.SetText(n)
	}
	lines := []fyne.CanvasObject{
		wrapLabel(safe(fmt.Sprintf("%s: root v%d, expires %s", filepath.Base(path), sum.Version, sum.Expires.Local().Format("2006-01-02")))),
		widget.NewForm(widget.NewFormItem("Repository", name)),
		wrapLabel("Pin it only if these fingerprints match what the vendor published:"),
	}
	for _, k := range sum.Keys {
		l := widget.NewLabel(k.Fingerprint + "  " + k.Type)
		l.TextStyle.Monospace = true
		lines = append(lines, l)
	}
	for _, r := range sum.Roles {
		lines = append(lines, widget.NewLabel(fmt.Sprintf("%s: %d of %d keys", r.Role, r.Threshold, len(r.KeyIDs))))
	}
	dlg := dialog.NewCustomConfirm("Pin this trust root?", "They match: pin it", "Cancel", container.NewVBox(lines...), func(ok bool) {
		if !ok {
			return
		}
		repo := strings.TrimSpace(name.Text)
		if repo == "" {
			dialog.ShowError(fmt.Errorf("root %s names no repository: type the vendor's repository name, then pin it again", app.Text(filepath.Base(path))), sh.Window)
			return
		}
		store, err := app.OpenTrustStore(sh.State.Home())
		if err == nil {
			err = store.Add(repo, data)
		}
		if err != nil {
			dialog.ShowError(err, sh.Window)
			return
		}
		sh.State.ReopenSession()
		sh.State.Status.Set("Pinned the trust root " + app.Text(repo))
		done()
	}, sh.Window)
	dlg.Show()
}
