package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldflash/fieldflash/verify/release"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"
)

// passphraseEnv names the variable scripts set instead of typing the passphrase.
const passphraseEnv = "FIELDFLASH_PASSPHRASE"

// passphrase returns the passphrase for file: from the environment, else asked on the
// terminal (twice when confirm is set, for a new key).
func passphrase(file string, confirm bool) ([]byte, error) {
	if p, ok := os.LookupEnv(passphraseEnv); ok {
		if p == "" {
			return nil, fmt.Errorf("%s is set but empty; a private key needs a passphrase", passphraseEnv)
		}
		return []byte(p), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	fd := -1
	if err == nil {
		defer tty.Close()
		fd = int(tty.Fd())
	} else if term.IsTerminal(int(os.Stdin.Fd())) {
		tty, fd = os.Stderr, int(os.Stdin.Fd())
	}
	if fd < 0 || !term.IsTerminal(fd) {
		return nil, fmt.Errorf("key %s: no passphrase: set %s or run in a terminal", file, passphraseEnv)
	}
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		p, err := term.ReadPassword(fd)
		fmt.Fprintln(tty)
		return p, err
	}
	p, err := ask("Passphrase for " + file + ": ")
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase refused; a private key must be encrypted")
	}
	if confirm {
		again, err := ask("Same passphrase again: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("the two passphrases differ; nothing written")
		}
	}
	return p, nil
}

// candidates lists where a key named name may be: as given, with the suffix, and in the
// repository's keys/ folder.
func candidates(repo, name, suffix string) []string {
	base := name
	for _, s := range []string{".key", ".pub"} {
		base = strings.TrimSuffix(base, s)
	}
	c := []string{base + suffix}
	if !strings.ContainsRune(name, filepath.Separator) && repo != "" {
		c = append(c, filepath.Join(repo, release.KeysDir, base+suffix))
	}
	return c
}

func find(repo, name, suffix, what string) (string, error) {
	if st, err := os.Stat(name); err == nil && st.Mode().IsRegular() && strings.HasSuffix(name, suffix) {
		return name, nil
	}
	c := candidates(repo, name, suffix)
	for _, p := range c {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s %q: not found (looked at %s); make one with `fieldflash-release keygen --out NAME`", what, name, strings.Join(c, ", "))
}

// publicKey reads the public key named by name (NAME, NAME.pub, NAME.key or keys/NAME.pub).
func publicKey(repo, name string) (*metadata.Key, error) {
	p, err := find(repo, name, ".pub", "public key")
	if err != nil {
		return nil, err
	}
	return release.ReadPublicKey(p)
}

func publicKeys(repo string, names []string) ([]*metadata.Key, error) {
	var keys []*metadata.Key
	for _, n := range names {
		k, err := publicKey(repo, n)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// signingKeys reads and decrypts private keys.
func signingKeys(repo string, names []string) ([]*release.SigningKey, error) {
	var keys []*release.SigningKey
	for _, n := range names {
		p, err := find(repo, n, ".key", "private key")
		if err != nil {
			return nil, err
		}
		pass, err := passphrase(p, false)
		if err != nil {
			return nil, err
		}
		k, err := release.ReadSigningKey(p, pass)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
