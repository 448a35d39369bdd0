package fetch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki is a throwaway certificate authority for tests: its keys exist only in this process
// and the temp files it writes.
type pki struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // the CA certificate file
}

func newPKI(t *testing.T, name string) *pki {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), cert: cert, key: key}
	p.pem = p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue makes a leaf certificate; server ones are for 127.0.0.1.
func (p *pki) issue(name string, server bool) (tls.Certificate, string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := p.write(name+".pem", "CERTIFICATE", der), p.write(name+".key", "PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		p.t.Fatal(err)
	}
	return c, certFile, keyFile
}

// tlsMirror serves the repository over TLS and demands a client certificate from clients.
func tlsMirror(t *testing.T, dir string, server, clients *pki) *mirror {
	m := &mirror{served: map[string]int64{}}
	plain := newMirror(t, dir)
	m.files = plain.files
	m.Server = httptest.NewUnstartedServer(m)
	cert, _, _ := server.issue("mirror", true)
	pool := x509.NewCertPool()
	pool.AddCert(clients.cert)
	m.Server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	m.Server.StartTLS()
	t.Cleanup(m.Close)
	return m
}

func TestMutualTLSWithAClientCertificateAndThePinnedServerCA(t *testing.T) {
	v, app, _ := acmeRelease(t)
	serverCA, clientCA := newPKI(t, "vendor-server"), newPKI(t, "vendor-clients")
	m := tlsMirror(t, v.repo.Dir, serverCA, clientCA)
	_, certFile, keyFile := clientCA.issue("laptop-17", false)
	l := newLaptop(t, v)

	// Without a client certificate the server refuses the laptop.
	if err := SaveRemote(l.home, Remote{Repository: "acme", Mirrors: []string{m.URL}, ServerCA: serverCA.pem}); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	t.Log(err)
	if CodeOf(err) != CodeConfig {
		t.Fatalf("without a client certificate: %v; want a configuration error", err)
	}

	// With one, and the server's CA pinned, it works.
	if err := SaveRemote(l.home, Remote{Repository: "acme", Mirrors: []string{m.URL}, ClientCert: certFile, ClientKey: keyFile, ServerCA: serverCA.pem}); err != nil {
		t.Fatal(err)
	}
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)

	// A server whose certificate comes from another CA is not trusted, client certificate
	// or not: the pinned CA replaces the system's.
	impostorCA := newPKI(t, "impostor")
	impostor := tlsMirror(t, v.repo.Dir, impostorCA, clientCA)
	if err := SaveRemote(l.home, Remote{Repository: "acme", Mirrors: []string{impostor.URL}, ClientCert: certFile, ClientKey: keyFile, ServerCA: serverCA.pem}); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(context.Background(), l.options("acme-gw-r2"))
	t.Log(err)
	if CodeOf(err) != CodeConfig || len(impostor.requests("/")) != 0 {
		t.Fatalf("a server outside the pinned CA: %v (%d requests reached it); want a refusal before any request", err, len(impostor.requests("/")))
	}
}

func TestARemoteWithHalfAClientCertificateIsRefused(t *testing.T) {
	home := t.TempDir()
	for _, r := range []Remote{
		{Repository: "acme", Mirrors: []string{"https://x.example"}, ClientCert: "/nonexistent.pem"},
		{Repository: "acme", Mirrors: []string{"ftp://x.example"}},
		{Repository: "acme"},
		{Repository: "../acme", Mirrors: []string{"https://x.example"}},
		{Repository: "acme", Mirrors: []string{"https://user:pw@x.example"}},
	} {
		if err := SaveRemote(home, r); err == nil {
			t.Errorf("SaveRemote(%+v) accepted it", r)
		}
	}
}
