package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Remote is how this machine reaches one repository online. It is kept per pinned root,
// in $FIELDFLASH_HOME/remotes/<repository>.json.
type Remote struct {
	// Repository is the pinned root's name in the trust store.
	Repository string `json:"repository"`
	// Mirrors are base URLs, tried in order: <base>/metadata/<role>.json and
	// <base>/targets/<target path>, the layout fieldflash-release writes.
	Mirrors []string `json:"mirrors"`
	// ClientCert and ClientKey (PEM files) authenticate this laptop to servers that ask
	// for a client certificate; both or neither.
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  string `json:"client_key,omitempty"`
	// ServerCA (a PEM file) is then the only certificate authority trusted for this
	// repository's servers, instead of the system's.
	ServerCA string `json:"server_ca,omitempty"`
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$`)

func remotesDir(home string) string { return filepath.Join(home, "remotes") }

// Check refuses a configuration that cannot work, naming what to fix.
func (r *Remote) Check() error {
	if !repoName.MatchString(r.Repository) {
		return fmt.Errorf("repository name %q: use the name `fieldflash trust list` shows", r.Repository)
	}
	if len(r.Mirrors) == 0 {
		return fmt.Errorf("repository %s: no mirror URL; give at least one, e.g. https://updates.example.com/tuf", r.Repository)
	}
	for _, m := range r.Mirrors {
		if err := checkMirror(m); err != nil {
			return fmt.Errorf("repository %s: %w", r.Repository, err)
		}
	}
	if (r.ClientCert == "") != (r.ClientKey == "") {
		return fmt.Errorf("repository %s: a client certificate needs its key and a key its certificate; give both", r.Repository)
	}
	if r.ClientCert != "" || r.ServerCA != "" {
		if _, err := r.tlsConfig(); err != nil {
			return err
		}
		for _, m := range r.Mirrors {
			if !strings.HasPrefix(m, "https://") {
				return fmt.Errorf("repository %s: mirror %s is not https, so its client certificate and pinned CA would not be used; use an https URL", r.Repository, m)
			}
		}
	}
	return nil
}

func checkMirror(m string) error {
	u, err := url.Parse(m)
	if err != nil {
		return fmt.Errorf("mirror %q: %v", m, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("mirror %q: use an http:// or https:// URL", m)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("mirror %q: give scheme, host and path only (no user, query or fragment)", m)
	}
	return nil
}

// tlsConfig builds the TLS settings of r: the pinned CA and the client certificate.
func (r *Remote) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.ServerCA != "" {
		pem, err := os.ReadFile(r.ServerCA)
		if err != nil {
			return nil, fmt.Errorf("repository %s: server CA %s: %v", r.Repository, r.ServerCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("repository %s: server CA %s holds no PEM certificate; ask the vendor for their CA certificate", r.Repository, r.ServerCA)
		}
		c.RootCAs = pool
	}
	if r.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(r.ClientCert, r.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("repository %s: client certificate %s with key %s: %v; check that both are PEM and belong together", r.Repository, r.ClientCert, r.ClientKey, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// SaveRemote checks r and keeps it, replacing an earlier configuration of the same
// repository. File paths are stored absolute.
func SaveRemote(home string, r Remote) error {
	for _, p := range []*string{&r.ClientCert, &r.ClientKey, &r.ServerCA} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	for i, m := range r.Mirrors {
		r.Mirrors[i] = strings.TrimRight(m, "/")
	}
	if err := r.Check(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(remotesDir(home), r.Repository+".json"), append(data, '\n'))
}

// LoadRemote reads the configuration of one repository.
func LoadRemote(home, repository string) (*Remote, error) {
	if !repoName.MatchString(repository) {
		return nil, errorf(CodeConfig, "repository "+repository, "use the name `fieldflash trust list` shows", "not a repository name")
	}
	path := filepath.Join(remotesDir(home), repository+".json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(CodeConfig, "repository "+repository, "configure its mirror first: `fieldflash remote add "+repository+" URL`",
			"no mirror is configured")
	}
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: path, Reason: err.Error(), Next: "check that $FIELDFLASH_HOME is readable", Err: err}
	}
	var r Remote
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, errorf(CodeConfig, path, "configure it again with `fieldflash remote add`", "damaged: %v", err)
	}
	if r.Repository != repository {
		return nil, errorf(CodeConfig, path, "configure it again with `fieldflash remote add`", "names repository %q", r.Repository)
	}
	if err := r.Check(); err != nil {
		return nil, &Error{Code: CodeConfig, Thing: path, Reason: err.Error(), Next: "fix it with `fieldflash remote add`", Err: err}
	}
	return &r, nil
}

// Remotes lists every configured repository, by name.
func Remotes(home string) ([]Remote, error) {
	entries, err := os.ReadDir(remotesDir(home))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Remote
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		r, err := LoadRemote(home, name)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Remote) int { return strings.Compare(a.Repository, b.Repository) })
	return out, nil
}

// RemoveRemote forgets a repository's online configuration (not its trust).
func RemoveRemote(home, repository string) error {
	if !repoName.MatchString(repository) {
		return fmt.Errorf("repository name %q: use the name `fieldflash remote list` shows", repository)
	}
	err := os.Remove(filepath.Join(remotesDir(home), repository+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repository %s has no mirror configured; `fieldflash remote list` shows what is", repository)
	}
	return err
}

// writeFileAtomic replaces path with data: temp file, fsync, rename.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
