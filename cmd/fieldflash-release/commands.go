package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
	"github.com/fieldflash/fieldflash/verify/untrusted"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func printJSON(out io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = out.Write(append(untrusted.JSON(b), '\n'))
	return err
}

func openRepo(dir string) (*release.Repo, error) { return release.Open(dir) }

func expiryFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := release.ParseExpiry(s, time.Now())
	if err != nil {
		return time.Time{}, usageError{err.Error()}
	}
	return t, nil
}

func cmdKeygen(args []string, out io.Writer) error {
	fs, _ := flags("keygen", `--type ed25519|ecdsa-p256 --out NAME [--json]
Writes NAME.key (PKCS#8 "ENCRYPTED PRIVATE KEY", PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC,
readable by `+"`openssl pkcs8`"+`) and NAME.pub (SPKI "PUBLIC KEY"), and prints the TUF key id.
The passphrase comes from $FIELDFLASH_PASSPHRASE or is asked twice on the terminal.
Keep NAME.key off version control; share NAME.pub.`)
	typ := fs.String("type", release.KeyEd25519, "key `TYPE`: ed25519 or ecdsa-p256")
	name := fs.String("out", "", "`NAME` of the key files (NAME.key, NAME.pub)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "out"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *typ != release.KeyEd25519 && *typ != release.KeyECDSAP256 {
		return usagef("--type %q: use ed25519 or ecdsa-p256", *typ)
	}
	base := strings.TrimSuffix(*name, ".key")
	keyFile, pubFile := base+".key", base+".pub"
	for _, f := range []string{keyFile, pubFile} {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s already exists; pick another --out (a key is never overwritten)", f)
		}
	}
	pass, err := passphrase(keyFile, true)
	if err != nil {
		return err
	}
	priv, err := release.GenerateKey(*typ)
	if err != nil {
		return err
	}
	privPEM, err := release.EncodePrivateKey(priv, pass)
	if err != nil {
		return err
	}
	pubPEM, err := release.EncodePublicKey(priv.Public())
	if err != nil {
		return err
	}
	sk, err := release.NewSigningKey(priv)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(keyFile); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if err := writeNew(keyFile, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pubFile, pubPEM, 0o644); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out, map[string]string{"key_id": sk.ID(), "type": *typ, "private": keyFile, "public": pubFile})
	}
	untrusted.Fprintf(out, "%s  %s (%s)\n", sk.ID(), pubFile, *typ)
	return nil
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cmdFingerprint(args []string, out io.Writer) error {
	fs, repo := flags("fingerprint", `[--json] KEY...
Prints the TUF key id (sha256 of the key's canonical JSON) of each public key (NAME, NAME.pub,
or NAME.key whose NAME.pub lies beside it).`)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one key")
	}
	type row struct {
		Key   string `json:"key"`
		KeyID string `json:"key_id"`
		Type  string `json:"type"`
	}
	var rows []row
	for _, n := range fs.Args() {
		k, err := publicKey(*repo, n)
		if err != nil {
			return err
		}
		rows = append(rows, row{Key: n, KeyID: release.KeyID(k), Type: k.Type})
	}
	if *asJSON {
		return printJSON(out, rows)
	}
	for _, r := range rows {
		untrusted.Fprintf(out, "%s  %s\n", r.KeyID, r.Key)
	}
	return nil
}

func cmdInit(args []string, out io.Writer) error {
	fs, repo := flags("init", `--name VENDOR --root-key K... --targets-key K... --snapshot-key K... --timestamp-key K... [--ROLE-threshold M] [--expires 365d]
Makes root v1 (keys and threshold per role; the vendor name in the signed field
x-fieldflash-repository) and an empty targets v1, both unsigned. Key flags repeat or take
comma-separated names; thresholds default to 1.`)
	name := fs.String("name", "", "vendor repository `NAME` technicians see")
	var keys [4]list
	var thresholds [4]int
	roles := []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}
	for i, r := range roles {
		fs.Var(&keys[i], r+"-key", "public `KEY` of the "+r+" role (repeat for more)")
		fs.IntVar(&thresholds[i], r+"-threshold", 1, "signatures the "+r+" role needs")
	}
	expires := fs.String("expires", "365d", "root expiry: lifetime (365d) or date (2036-01-01)")
	targetsExpires := fs.String("targets-expires", "365d", "targets expiry")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "name", "root-key", "targets-key", "snapshot-key", "timestamp-key"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	o := release.InitOptions{Name: *name}
	var err error
	if o.RootExpires, err = expiryFlag(*expires); err != nil {
		return err
	}
	if o.TargetsExpires, err = expiryFlag(*targetsExpires); err != nil {
		return err
	}
	rk := []*release.RoleKeys{&o.Root, &o.Targets, &o.Snapshot, &o.Timestamp}
	for i := range roles {
		if rk[i].Keys, err = publicKeys(*repo, keys[i]); err != nil {
			return err
		}
		rk[i].Threshold = thresholds[i]
	}
	if _, err := release.Init(*repo, o); err != nil {
		return err
	}
	untrusted.Fprintf(out, "repository %q made in %s: root v1 and targets v1, unsigned\nnext: sign root with %d root key(s) (`fieldflash-release sign --role root --key K`), add targets, sign targets, publish\n", *name, *repo, o.Root.Threshold)
	return nil
}

func cmdDelegate(args []string, out io.Writer) error {
	fs, repo := flags("delegate", `--role NAME --key K... --paths PATTERN... [--hardware ID...] [--threshold M] [--expires 90d] [--terminating] [--from ROLE]
Delegates target paths (TUF patterns such as 'acme-gw/*') to role NAME with its own keys, or
changes an existing delegation (new keys, threshold, paths or hardware: the way to rotate or
revoke a product key). --hardware confines the role to those hardware ids (signed by the
delegating role, in the delegation): verify refuses any target the role, or a role below it,
signs for other hardware. Makes NAME.json (empty, unsigned) if it does not exist. The
delegating role (--from, default targets) changes and must be signed again.`)
	role := fs.String("role", "", "delegated role `NAME`, e.g. acme-gw")
	var keys, paths list
	fs.Var(&keys, "key", "public `KEY` of the role (repeat for more)")
	fs.Var(&paths, "paths", "target path `PATTERN` the role may sign (repeat for more)")
	var hardware list
	fs.Var(&hardware, "hardware", "hardware `ID` the role may sign for (repeat for more); none: any hardware")
	threshold := fs.Int("threshold", 1, "signatures the role needs")
	expires := fs.String("expires", "90d", "expiry of the new role's metadata")
	terminating := fs.Bool("terminating", false, "clients stop searching other roles for these paths")
	from := fs.String("from", metadata.TARGETS, "delegating `ROLE`")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "role", "key", "paths"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	exp, err := expiryFlag(*expires)
	if err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	k, err := publicKeys(*repo, keys)
	if err != nil {
		return err
	}
	d := release.Delegation{Name: *role, Delegator: *from, RoleKeys: release.RoleKeys{Keys: k, Threshold: *threshold}, Paths: paths, Terminating: *terminating, Expires: exp, HardwareIDs: hardware}
	if err := r.Delegate(d); err != nil {
		return err
	}
	for_ := strings.Join(paths, " ")
	if len(hardware) > 0 {
		for_ += ", hardware " + strings.Join(hardware, " ")
	}
	untrusted.Fprintf(out, "role %s delegated by %s for %s (threshold %d of %d)\nnext: sign %s, and %s with the role's keys once it lists targets\n", *role, *from, for_, *threshold, len(k), *from, *role)
	return nil
}

func cmdAddTarget(args []string, out io.Writer) error {
	fs, repo := flags("add-target", `--file F --path P --hardware ID... --version SEMVER --counter N --component C [flags]
Copies F into targets/P and lists it (length, sha256, custom.fieldflash) in targets or in the
delegated --role. The role changes and must be signed again.`)
	file := fs.String("file", "", "payload `FILE`")
	path := fs.String("path", "", "target `PATH`, e.g. acme-gw/app-1.2.3.bin")
	role := fs.String("role", metadata.TARGETS, "targets `ROLE` that lists it")
	var hw, protocols, requires, advisories list
	fs.Var(&hw, "hardware", "hardware `ID` the image fits (repeat for more)")
	version := fs.String("version", "", "image `SEMVER`, e.g. 1.2.3+45")
	counter := fs.Uint64("counter", 0, "release counter (anti-rollback)")
	component := fs.String("component", "", "`COMPONENT` the image replaces: app, bootloader, radio, ...")
	format := fs.String("format", "", "payload `FORMAT`: raw (default), mcuboot, dfu, dfuse")
	fs.Var(&protocols, "protocol", "flashing `PROTOCOL` in order of preference: smp, ymodem, dfu")
	slot := fs.String("image-slot", "", "MCUmgr image `N`")
	alt := fs.String("dfu-alt", "", "USB DFU alternate setting `N`")
	address := fs.String("address", "", "flash `ADDRESS`, e.g. 0x08000000")
	usbVendor := fs.String("usb-vendor", "", "USB vendor `ID` (hex) a DFU suffix must carry")
	usbProduct := fs.String("usb-product", "", "USB product `ID` (hex) a DFU suffix must carry")
	fs.Var(&requires, "requires", "`REQUIREMENT` on another component, e.g. 'bootloader>=1.2.0' (repeat for more)")
	notes := fs.String("notes", "", "release notes `TEXT`, or @FILE to read them from a file")
	fs.Var(&advisories, "advisory", "security advisory `ID` this release fixes (repeat for more)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "file", "path", "hardware", "version", "counter", "component"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	m := verify.TargetMeta{HardwareIDs: hw, Version: *version, ReleaseCounter: *counter, Component: *component, Format: *format, Advisories: advisories}
	m.Protocol.Protocols = protocols
	var err error
	if m.Protocol.ImageSlot, err = optInt("image-slot", *slot); err != nil {
		return err
	}
	if m.Protocol.DFUAlt, err = optInt("dfu-alt", *alt); err != nil {
		return err
	}
	if *address != "" {
		a, err := strconv.ParseUint(*address, 0, 64)
		if err != nil {
			return usagef("--address %q: write a number, e.g. 0x08000000", *address)
		}
		m.Protocol.Address = &a
	}
	if m.Protocol.USBVendor, err = optHex16("usb-vendor", *usbVendor); err != nil {
		return err
	}
	if m.Protocol.USBProduct, err = optHex16("usb-product", *usbProduct); err != nil {
		return err
	}
	// A requirement has spaces inside ("bootloader>=1.2.0 <2.0.0") but may carry commas only
	// as list separators; the list flag already split on them.
	for _, s := range requires {
		req, err := release.ParseRequirement(s)
		if err != nil {
			return usageError{err.Error()}
		}
		m.Requires = append(m.Requires, req)
	}
	if n, ok := strings.CutPrefix(*notes, "@"); ok {
		b, err := os.ReadFile(n)
		if err != nil {
			return fmt.Errorf("--notes: %w", err)
		}
		m.ReleaseNotes = string(b)
	} else {
		m.ReleaseNotes = *notes
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	tf, err := r.AddTarget(release.NewTarget{Path: *path, File: *file, Role: *role, Meta: m})
	if err != nil {
		return err
	}
	untrusted.Fprintf(out, "%s: %d bytes, sha256 %x, listed by %s\nnext: sign %s\n", *path, tf.Length, []byte(tf.Hashes["sha256"]), *role, *role)
	return nil
}

func optInt(name, s string) (*int, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, usagef("--%s %q: write a number", name, s)
	}
	return &n, nil
}

func optHex16(name, s string) (*uint16, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 16)
	if err != nil {
		return nil, usagef("--%s %q: write a 16-bit hex number, e.g. 0x0483", name, s)
	}
	v := uint16(n)
	return &v, nil
}

func cmdWithdraw(args []string, out io.Writer) error {
	fs, repo := flags("withdraw", `--path P
Removes target P from the role that lists it and deletes its payload. Sign that role and
publish: machines that see the new metadata refuse older bundles carrying P.`)
	path := fs.String("path", "", "target `PATH`")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "path"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	role, err := r.Withdraw(*path)
	if err != nil {
		return err
	}
	untrusted.Fprintf(out, "%s withdrawn from %s\nnext: sign %s, publish, bundle\n", *path, role, role)
	return nil
}

func cmdSign(args []string, out io.Writer) error {
	fs, repo := flags("sign", `--role ROLE --key K...
Adds one signature per key to ROLE's metadata file in place (root: the newest; N.root: a given
version). Nothing else changes. A new root needs keys of the previous root and of itself.
On another machine: copy metadata/ there, sign, bring the file back and `+"`merge`"+` it.`)
	role := fs.String("role", "", "`ROLE` to sign: root, targets, snapshot, timestamp or a delegated role")
	var keys list
	fs.Var(&keys, "key", "private `KEY` (repeat for more)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "role", "key"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	sk, err := signingKeys(*repo, keys)
	if err != nil {
		return err
	}
	if err := r.Sign(*role, sk...); err != nil {
		return err
	}
	for _, k := range sk {
		untrusted.Fprintf(out, "%s signed by %s\n", *role, k.ID())
	}
	return nil
}

func cmdMerge(args []string, out io.Writer) error {
	fs, repo := flags("merge", `[--role ROLE] FILE...
Adds the signatures of copies of a role's metadata (signed on other machines) to this
repository's file. The role comes from the file name (targets.json, 2.root.json,
acme-gw.json) unless --role is given. Refused when the signed content differs.`)
	role := fs.String("role", "", "`ROLE` of every FILE (default: from each file name)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one metadata file")
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	for _, f := range fs.Args() {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		rl := *role
		if rl == "" {
			rl = release.RoleForFile(f)
		}
		added, err := r.Merge(rl, data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if len(added) == 0 {
			untrusted.Fprintf(out, "%s: no new signatures for %s\n", f, rl)
		}
		for _, id := range added {
			untrusted.Fprintf(out, "%s: %s signature by %s added\n", f, rl, id)
		}
	}
	return nil
}

func cmdStatus(args []string, out io.Writer) error {
	fs, repo := flags("status", `[--json]
Shows every role's version, expiry and signatures against its threshold(s), what keeps the
repository from being bundled, and the targets. Exit code 0 even when not ready; scripts read
"ready" from --json.`)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	st, err := r.Status()
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out, st)
	}
	untrusted.Fprintf(out, "repository %q in %s\n\n", st.Repository, st.Dir)
	for _, rs := range st.Roles {
		exp := "-"
		if !rs.Expires.IsZero() {
			exp = rs.Expires.Format(time.RFC3339)
		}
		untrusted.Fprintf(out, "%-16s v%-4d expires %-22s", rs.File, rs.Version, exp)
		for _, sc := range rs.Signatures {
			untrusted.Fprintf(out, "  %d/%d (%s)", len(sc.SignedBy), sc.Threshold, sc.By)
		}
		untrusted.Fprintln(out)
		for _, sc := range rs.Signatures {
			for _, id := range sc.KeyIDs {
				mark := " "
				for _, s := range sc.SignedBy {
					if s == id {
						mark = "✓"
					}
				}
				untrusted.Fprintf(out, "    %s %s (%s)\n", mark, id, sc.By)
			}
		}
		for _, p := range rs.Problems {
			untrusted.Fprintf(out, "    ! %s\n", p)
		}
	}
	untrusted.Fprintln(out, "\ntargets:")
	for _, t := range st.Targets {
		untrusted.Fprintf(out, "  %s  %s %s (%s) counter %d, %d bytes, role %s\n", t.Path, t.Meta.Component, t.Meta.Version, strings.Join(t.Meta.HardwareIDs, ","), t.Meta.ReleaseCounter, t.Length, t.Role)
	}
	if st.Ready {
		untrusted.Fprintln(out, "\nready to bundle")
	} else {
		untrusted.Fprintln(out, "\nnot ready to bundle: see the lines marked !")
	}
	return nil
}

func cmdRotateRoot(args []string, out io.Writer) error {
	fs, repo := flags("rotate-root", `[--role ROLE] [--add-key K...] [--remove-key K|ID...] [--threshold M] [--expires D]
Makes the next root version with the keys of ROLE (root by default; also targets, snapshot,
timestamp) changed. The new N.root.json must then be signed by a threshold of the old root's
keys and of the new root's keys: `+"`sign --role root --key OLD --key NEW`"+`.`)
	role := fs.String("role", metadata.ROOT, "top-level `ROLE` whose keys change")
	var add, remove list
	fs.Var(&add, "add-key", "public `KEY` to add (repeat for more)")
	fs.Var(&remove, "remove-key", "`KEY` file or key id (prefix) to remove (repeat for more)")
	threshold := fs.Int("threshold", 0, "new threshold of ROLE (0 keeps it)")
	expires := fs.String("expires", "", "new root expiry (default: keep)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	exp, err := expiryFlag(*expires)
	if err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	c := release.RootChange{Role: *role, Threshold: *threshold, Expires: exp}
	if c.Add, err = publicKeys(*repo, add); err != nil {
		return err
	}
	for _, k := range remove {
		if pk, err := publicKey(*repo, k); err == nil {
			c.Remove = append(c.Remove, release.KeyID(pk))
		} else {
			c.Remove = append(c.Remove, k)
		}
	}
	v, err := r.ChangeRoot(c)
	if err != nil {
		return err
	}
	untrusted.Fprintf(out, "root v%d written (%d.root.json)\nnext: sign it with keys of root v%d and of root v%d: `fieldflash-release sign --role root --key OLD --key NEW`\n", v, v, v-1, v)
	return nil
}

func cmdRevokeKey(args []string, out io.Writer) error {
	fs, repo := flags("revoke-key", `--role ROLE --key-id ID
Removes a key from ROLE: a top-level role through a new root version, a delegated role through
its delegator. The changed metadata must be signed again.`)
	role := fs.String("role", "", "`ROLE` whose key is revoked")
	id := fs.String("key-id", "", "key `ID` (or a unique prefix, or a key file)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "role", "key-id"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	keyID := *id
	if pk, err := publicKey(*repo, keyID); err == nil {
		keyID = release.KeyID(pk)
	}
	if err := r.RevokeKey(*role, keyID); err != nil {
		return err
	}
	untrusted.Fprintf(out, "key %s revoked from %s\nnext: `fieldflash-release status` shows what to sign\n", keyID, *role)
	return nil
}

func cmdBumpExpiry(args []string, out io.Writer) error {
	fs, repo := flags("bump-expiry", `--role ROLE --expires D
Sets ROLE's expiry (root: in a new root version). The role must be signed again.`)
	role := fs.String("role", "", "`ROLE`")
	expires := fs.String("expires", "", "lifetime (30d) or date (2036-01-01)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "role", "expires"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	exp, err := expiryFlag(*expires)
	if err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	if err := r.BumpExpiry(*role, exp); err != nil {
		return err
	}
	untrusted.Fprintf(out, "%s expires %s\nnext: sign %s\n", *role, exp.Format(time.RFC3339), *role)
	return nil
}

func cmdSnapshot(args []string, out io.Writer) error {
	return remake("snapshot", args, out, func(r *release.Repo, exp time.Time, k []*release.SigningKey) error {
		return r.Snapshot(exp, k...)
	})
}

func cmdTimestamp(args []string, out io.Writer) error {
	return remake("timestamp", args, out, func(r *release.Repo, exp time.Time, k []*release.SigningKey) error {
		return r.Timestamp(exp, k...)
	})
}

func remake(role string, args []string, out io.Writer, do func(*release.Repo, time.Time, []*release.SigningKey) error) error {
	from := "the targets roles"
	if role == metadata.TIMESTAMP {
		from = "snapshot.json"
	}
	fs, repo := flags(role, `[--key K...] [--expires D]
Re-makes `+role+`.json from `+from+` as they are on disk (sha256 and length of each), and
signs it with the keys given. Unchanged content keeps its version and signatures unless
--expires is given.`)
	var keys list
	fs.Var(&keys, "key", "private `KEY` of the "+role+" role (repeat for more)")
	expires := fs.String("expires", "", "expiry when the role changes (default "+map[string]string{metadata.SNAPSHOT: "90d", metadata.TIMESTAMP: "30d"}[role]+")")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	exp, err := expiryFlag(*expires)
	if err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	sk, err := signingKeys(*repo, keys)
	if err != nil {
		return err
	}
	if err := do(r, exp, sk); err != nil {
		return err
	}
	untrusted.Fprintf(out, "%s.json made\n", role)
	return nil
}

func cmdPublish(args []string, out io.Writer) error {
	fs, repo := flags("publish", `--snapshot-key K... --timestamp-key K... [--snapshot-expires D] [--timestamp-expires D]
Once root and every targets role carry their signatures: re-makes and signs snapshot.json and
timestamp.json, then checks the whole repository as a verifier would (go-tuf trustedmetadata).`)
	var snapKeys, tsKeys list
	fs.Var(&snapKeys, "snapshot-key", "private `KEY` of the snapshot role (repeat for more)")
	fs.Var(&tsKeys, "timestamp-key", "private `KEY` of the timestamp role (repeat for more)")
	snapExp := fs.String("snapshot-expires", "", "snapshot expiry when it changes (default 90d)")
	tsExp := fs.String("timestamp-expires", "", "timestamp expiry when it changes (default 30d)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "snapshot-key", "timestamp-key"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	var o release.PublishOptions
	var err error
	if o.SnapshotExpires, err = expiryFlag(*snapExp); err != nil {
		return err
	}
	if o.TimestampExpires, err = expiryFlag(*tsExp); err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	if o.SnapshotKeys, err = signingKeys(*repo, snapKeys); err != nil {
		return err
	}
	if o.TimestampKeys, err = signingKeys(*repo, tsKeys); err != nil {
		return err
	}
	if err := r.Publish(o); err != nil {
		return err
	}
	untrusted.Fprintln(out, "published: snapshot and timestamp signed, repository checks out; next: bundle")
	return nil
}

func cmdBundle(args []string, out io.Writer) error {
	fs, repo := flags("bundle", `--out X.fwb [--target PATH...] [--json]
Writes a bundle of the given targets (default: all) with the whole root chain and every
role's metadata. Refused when a role lacks signatures, expired, or snapshot/timestamp are out
of date. The same repository gives byte-identical bundles.`)
	outFile := fs.String("out", "", "bundle `FILE` to write")
	var targets list
	fs.Var(&targets, "target", "target `PATH` to carry (repeat for more; default all)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if err := require(fs, "out"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	r, err := openRepo(*repo)
	if err != nil {
		return err
	}
	sum, size, err := r.BundleFile(*outFile, targets)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out, map[string]any{"bundle": *outFile, "sha256": sum, "size": size})
	}
	untrusted.Fprintf(out, "%s: %d bytes, sha256 %s\n", *outFile, size, sum)
	return nil
}

func cmdInspect(args []string, out io.Writer) error {
	fs, _ := flags("inspect", `[--json] X.fwb
Lists a bundle's entries, roles (versions, expiry, signature key ids), targets with their
custom fields, and payloads (with whether each hashes to its name). Trusts nothing: use
`+"`fieldflash verify`"+` to decide whether it may be flashed.`)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one bundle file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	inv, err := release.Inspect(f, st.Size())
	if err != nil {
		return fmt.Errorf("bundle %s: %w", fs.Arg(0), err)
	}
	if *asJSON {
		return printJSON(out, inv)
	}
	_, err = io.WriteString(out, inv.String())
	return err
}
