// Package selfupdate keeps fieldflash itself up to date through the same trust chain as
// the firmware it flashes (docs/self-update.md).
//
// A fieldflash build is a target of the vendor's TUF repository whose custom.fieldflash
// names component "fieldflash" and, as its hardware id, the platform it runs on
// ("linux-amd64", "windows-amd64", "darwin-arm64"). An update comes from a bundle that
// verify accepts: one fetched and assembled online (app/fetch), or one given on a USB stick
// while offline. It is applied only with the user's consent (the caller asks), never while
// a flash is unfinished, never to an older build (version and release counter), and with
// minio/selfupdate given the verified SHA-256 as its Checksum, so the bytes that replace
// the executable are the bytes that were verified. The previous executable is kept beside
// the new one, and Rollback puts it back.
package selfupdate

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/minio/selfupdate"

	"github.com/fieldflash/fieldflash/app/fetch"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify"
)

// Component is the custom.fieldflash component of fieldflash's own builds.
const Component = "fieldflash"

// Platform is the hardware id of builds for this machine: GOOS-GOARCH.
func Platform() string { return runtime.GOOS + "-" + runtime.GOARCH }

// Build is the running fieldflash.
type Build struct {
	// Version is the build's semver version; a build that is not stamped with one ("dev")
	// counts as 0.0.0-dev, older than any release.
	Version string `json:"version"`
	// Counter is the build's release counter: an update may not go below it.
	Counter uint64 `json:"release_counter"`
}

func (b Build) version() string {
	if _, err := verify.CompareVersions(b.Version, b.Version); err != nil {
		return "0.0.0-dev"
	}
	return b.Version
}

// Options are what every operation needs.
type Options struct {
	Home    string
	Roots   []verify.PinnedRoot
	State   verify.State
	Current Build
	// Executable is the file to replace; "" is the running executable.
	Executable string
	// Platform overrides Platform() (tests).
	Platform string
	Now      func() time.Time
}

func (o Options) platform() string {
	if o.Platform != "" {
		return o.Platform
	}
	return Platform()
}

func (o Options) executable() (string, error) {
	if o.Executable != "" {
		return filepath.Abs(o.Executable)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}

// Offer is a build of fieldflash found in a verified bundle.
type Offer struct {
	Bundle  string        `json:"bundle"`
	Target  verify.Target `json:"target"`
	Current Build         `json:"current"`
	// Newer is set when the build is newer than the running one and may be applied.
	Newer bool `json:"newer"`
	// Why says why it may not be applied when Newer is false.
	Why string `json:"why,omitempty"`
}

// Version is the offered build's version.
func (o *Offer) Version() string { return o.Target.Meta.Version }

// Error names the thing, the reason and the next step. Refused is set when the update was
// refused (unverified, older, a flash unfinished), not merely impossible here.
type Error struct {
	Thing, Reason, Next string
	Refused             bool
	Err                 error
}

func (e *Error) Error() string {
	msg := e.Thing + ": " + e.Reason
	if e.Next != "" {
		msg += "; " + e.Next
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// FromBundle verifies a bundle with verify and finds in it the newest build of fieldflash
// for this platform. A bundle that does not verify, or carries no such build, is refused.
func FromBundle(path string, o Options) (*Offer, error) {
	v, err := verify.VerifyFile(path, verify.Options{Roots: o.Roots, State: o.State, Now: o.Now})
	if err != nil {
		return nil, &Error{Thing: "update " + filepath.Base(path), Reason: "does not verify: " + err.Error(), Next: "nothing was changed; get the update from your vendor again", Refused: true, Err: err}
	}
	var best *verify.Target
	for i := range v.Targets {
		t := &v.Targets[i]
		if t.Meta.Component != Component || !contains(t.Meta.HardwareIDs, o.platform()) {
			continue
		}
		if best == nil {
			best = t
			continue
		}
		if c, err := verify.CompareVersions(t.Meta.Version, best.Meta.Version); err == nil && (c > 0 || c == 0 && t.Meta.ReleaseCounter > best.Meta.ReleaseCounter) {
			best = t
		}
	}
	if best == nil {
		return nil, &Error{Thing: "update " + filepath.Base(path), Reason: "carries no fieldflash build for " + o.platform(),
			Next: "ask the vendor for the update bundle of this platform", Refused: true}
	}
	off := &Offer{Bundle: path, Target: *best, Current: o.Current}
	judge(off)
	return off, nil
}

// judge decides whether an offered build may replace the running one: a newer version,
// and a release counter not below the running build's.
func judge(o *Offer) {
	c, err := verify.CompareVersions(o.Target.Meta.Version, o.Current.version())
	switch {
	case err != nil:
		o.Why = "its version " + o.Target.Meta.Version + " is not semver"
	case o.Target.Meta.ReleaseCounter < o.Current.Counter:
		o.Why = fmt.Sprintf("its release counter %d is below this build's %d: installing it would be a downgrade", o.Target.Meta.ReleaseCounter, o.Current.Counter)
	case c < 0:
		o.Why = fmt.Sprintf("%s is older than the running %s: refusing a downgrade (`fieldflash self-update --rollback` returns to the previous build)", o.Target.Meta.Version, o.Current.version())
	case c == 0:
		o.Why = "this is the running version, " + o.Current.version()
	default:
		o.Newer = true
	}
}

// Check fetches the vendor's newest metadata and, when it lists a build of fieldflash for
// this platform, downloads it and assembles and verifies an update bundle under
// $FIELDFLASH_HOME/self-update. The Offer says whether it is newer.
func Check(ctx context.Context, o Options, fo fetch.Options) (*Offer, error) {
	fo.Home, fo.Roots, fo.State, fo.Now = o.Home, o.Roots, o.State, o.Now
	fo.Hardware = []string{o.platform()}
	res, err := fetch.Fetch(ctx, fo)
	if err != nil && fetch.CodeOf(err) != fetch.CodeNotFound {
		return nil, err
	}
	if err != nil || !hasBuild(res) {
		return nil, &Error{Thing: "repository " + res.Repository, Reason: "lists no fieldflash build for " + o.platform(), Next: "nothing to update"}
	}
	dir := filepath.Join(o.Home, "self-update")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "update-"+o.platform()+".fwb")
	if _, err := fetch.Bundle(fetch.BundleOptions{Home: o.Home, Repository: res.Repository, Roots: o.Roots, State: o.State, Hardware: o.platform(), Out: out, Now: o.Now}); err != nil {
		return nil, err
	}
	return FromBundle(out, o)
}

func hasBuild(r *fetch.Result) bool {
	for _, t := range r.Targets {
		if t.Meta.Component == Component {
			return true
		}
	}
	return false
}

// record is what $FIELDFLASH_HOME/self-update/installed.json remembers of the last update.
type record struct {
	Executable string    `json:"executable"`
	Previous   string    `json:"previous"` // the kept executable
	PrevSHA256 string    `json:"previous_sha256"`
	PrevBuild  Build     `json:"previous_build"`
	Installed  Build     `json:"installed_build"`
	SHA256     string    `json:"installed_sha256"`
	At         time.Time `json:"at"`
}

func recordPath(home string) string { return filepath.Join(home, "self-update", "installed.json") }

// Applied says what an update or a rollback did.
type Applied struct {
	Executable string `json:"executable"`
	Previous   string `json:"previous"`
	From       Build  `json:"from"`
	To         Build  `json:"to"`
}

// Apply replaces the executable with the offered build, keeping the current one as
// <executable>.previous. The caller has asked the user.
func Apply(offer *Offer, o Options) (*Applied, error) {
	if !offer.Newer {
		return nil, &Error{Thing: "update " + offer.Version(), Reason: offer.Why, Refused: true}
	}
	if err := noFlashUnderWay(o.Home); err != nil {
		return nil, err
	}
	exe, err := o.executable()
	if err != nil {
		return nil, &Error{Thing: "fieldflash", Reason: "cannot find its own executable: " + err.Error()}
	}
	want, err := hex.DecodeString(offer.Target.SHA256)
	if err != nil || len(want) != sha256.Size {
		return nil, &Error{Thing: "update " + offer.Version(), Reason: "the verified target has no SHA-256", Refused: true}
	}
	f, err := os.Open(offer.Bundle)
	if err != nil {
		return nil, &Error{Thing: offer.Bundle, Reason: err.Error(), Next: "check the bundle is still there", Err: err}
	}
	defer f.Close()
	prevSum, err := fileSHA256(exe)
	if err != nil {
		return nil, &Error{Thing: exe, Reason: "cannot read it: " + err.Error(), Err: err}
	}
	prev := exe + ".previous"
	payload := io.NewSectionReader(f, offer.Target.Offset, offer.Target.Length)
	if err := apply(payload, exe, want, prev); err != nil {
		return nil, err
	}
	rec := record{Executable: exe, Previous: prev, PrevSHA256: prevSum, PrevBuild: offer.Current,
		Installed: Build{Version: offer.Version(), Counter: offer.Target.Meta.ReleaseCounter}, SHA256: offer.Target.SHA256, At: time.Now().UTC()}
	if err := saveRecord(o.Home, rec); err != nil {
		return nil, &Error{Thing: "fieldflash " + offer.Version(), Reason: "installed, but remembering the previous build failed: " + err.Error(), Next: "the previous build is kept at " + prev}
	}
	return &Applied{Executable: exe, Previous: prev, From: offer.Current, To: rec.Installed}, nil
}

// apply hands the bytes to minio/selfupdate with the verified hash as its Checksum: it
// refuses bytes that hash otherwise, writes them beside the executable, and swaps them in,
// keeping the old file at prev.
func apply(payload io.Reader, exe string, sum []byte, prev string) error {
	mode := os.FileMode(0o755)
	if fi, err := os.Stat(exe); err == nil {
		mode = fi.Mode().Perm() | 0o100
	}
	opts := selfupdate.Options{TargetPath: exe, TargetMode: mode, Checksum: sum, Hash: crypto.SHA256, OldSavePath: prev}
	if err := opts.CheckPermissions(); err != nil {
		return &Error{Thing: exe, Reason: "cannot be replaced: " + err.Error(),
			Next: "if a package manager installed fieldflash, update it there; else run the update as a user who may write " + filepath.Dir(exe), Err: err}
	}
	if err := selfupdate.Apply(payload, opts); err != nil {
		if rerr := selfupdate.RollbackError(err); rerr != nil {
			return &Error{Thing: exe, Reason: fmt.Sprintf("the update failed (%v) and putting the old executable back failed too (%v)", err, rerr),
				Next: "copy " + prev + " to " + exe + " by hand"}
		}
		return &Error{Thing: exe, Reason: "the update was not applied: " + err.Error(), Next: "nothing was changed", Err: err}
	}
	return nil
}

// Rollback puts the previous executable back; the one it replaces becomes the previous,
// so a second Rollback undoes the first.
func Rollback(o Options) (*Applied, error) {
	if err := noFlashUnderWay(o.Home); err != nil {
		return nil, err
	}
	rec, err := loadRecord(o.Home)
	if err != nil {
		return nil, err
	}
	exe, err := o.executable()
	if err != nil {
		return nil, &Error{Thing: "fieldflash", Reason: "cannot find its own executable: " + err.Error()}
	}
	if exe != rec.Executable {
		return nil, &Error{Thing: exe, Reason: "the last update replaced " + rec.Executable + ", not this executable", Next: "run the rollback from " + rec.Executable}
	}
	data, err := os.ReadFile(rec.Previous)
	if err != nil {
		return nil, &Error{Thing: rec.Previous, Reason: "the previous build is gone: " + err.Error(), Next: "install the build you want from a bundle with `fieldflash self-update --from`"}
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != rec.PrevSHA256 {
		return nil, &Error{Thing: rec.Previous, Reason: "the kept previous build changed since the update (its SHA-256 differs)", Next: "reinstall fieldflash from your vendor", Refused: true}
	}
	curSum, err := fileSHA256(exe)
	if err != nil {
		return nil, &Error{Thing: exe, Reason: err.Error(), Err: err}
	}
	if err := apply(bytes.NewReader(data), exe, sum[:], rec.Previous); err != nil {
		return nil, err
	}
	back := record{Executable: exe, Previous: rec.Previous, PrevSHA256: curSum, PrevBuild: rec.Installed, Installed: rec.PrevBuild, SHA256: rec.PrevSHA256, At: time.Now().UTC()}
	if err := saveRecord(o.Home, back); err != nil {
		return nil, &Error{Thing: exe, Reason: "rolled back, but remembering it failed: " + err.Error()}
	}
	return &Applied{Executable: exe, Previous: rec.Previous, From: rec.Installed, To: rec.PrevBuild}, nil
}

// noFlashUnderWay refuses while any flash journal is unfinished: a flash in progress in
// another window, or one interrupted that the same command resumes. Its binary must not
// change under it.
func noFlashUnderWay(home string) error {
	dir := filepath.Join(home, "journal")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &Error{Thing: dir, Reason: err.Error()}
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var j flasher.JournalEntry
		if json.Unmarshal(b, &j) != nil || j.Finished {
			continue
		}
		return &Error{Thing: "update", Refused: true,
			Reason: fmt.Sprintf("a flash of %s onto device %s is not finished (step %s, journal %s)", j.Target, j.Key.Device, j.Step, e.Name()),
			Next:   "finish it first (run the same flash command again), then update fieldflash"}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func saveRecord(home string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := recordPath(home)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func loadRecord(home string) (*record, error) {
	b, err := os.ReadFile(recordPath(home))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Thing: "rollback", Reason: "fieldflash was not updated on this machine, so there is no previous build to return to"}
	}
	if err != nil {
		return nil, &Error{Thing: recordPath(home), Reason: err.Error(), Err: err}
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil || r.Previous == "" {
		return nil, &Error{Thing: recordPath(home), Reason: "damaged", Next: "reinstall the build you want with `fieldflash self-update --from`"}
	}
	return &r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
