package release

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testPassphrase = "correct horse battery staple"

func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed: the interoperability check needs the system openssl")
	}
	return p
}

func openssl(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(needOpenSSL(t), args...)
	cmd.Env = append(os.Environ(), "FIELDFLASH_PASSPHRASE="+testPassphrase)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(err.Error() + ": " + stderr.String())
	}
	return out, nil
}

// The release engineer's key files must open with the standard tool, so that a key is never
// locked into fieldflash: `openssl pkcs8 -in KEY -passin env:FIELDFLASH_PASSPHRASE`.
func TestOpenSSLReadsTheEncryptedKeyKeygenWrites(t *testing.T) {
	for _, typ := range []string{KeyEd25519, KeyECDSAP256} {
		t.Run(typ, func(t *testing.T) {
			priv, err := GenerateKey(typ)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := EncodePrivateKey(priv, []byte(testPassphrase)) // real KDF iteration count
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(enc, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
				t.Fatalf("not an encrypted PKCS#8 PEM:\n%s", enc)
			}
			file := filepath.Join(t.TempDir(), "release.key")
			if err := os.WriteFile(file, enc, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := openssl(t, nil, "pkcs8", "-in", file, "-passin", "env:FIELDFLASH_PASSPHRASE")
			if err != nil {
				t.Fatalf("openssl cannot read the key: %v", err)
			}
			block, _ := pem.Decode(out)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Fatalf("openssl printed no plain PKCS#8 key:\n%s", out)
			}
			want, _ := x509.MarshalPKCS8PrivateKey(priv)
			got, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			gotDER, _ := x509.MarshalPKCS8PrivateKey(got)
			if !bytes.Equal(gotDER, want) {
				t.Fatal("openssl decrypted a different key")
			}

			cmd := exec.Command(needOpenSSL(t), "pkcs8", "-in", file, "-passin", "pass:wrong")
			if err := cmd.Run(); err == nil {
				t.Fatal("openssl opened the key with a wrong passphrase: it is not encrypted")
			}
		})
	}
}

// Keys made elsewhere with openssl (PBKDF2-SHA256 or scrypt) sign in fieldflash-release.
func TestKeyEncryptedByOpenSSLLoads(t *testing.T) {
	for _, c := range []struct {
		name string
		alg  []string
		args []string
	}{
		{"ed25519-pbkdf2", []string{"-algorithm", "ed25519"}, []string{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"}},
		{"p256-pbkdf2", []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, []string{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"}},
		{"ed25519-scrypt", []string{"-algorithm", "ed25519"}, []string{"-scrypt"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plain, err := openssl(t, nil, append([]string{"genpkey"}, c.alg...)...)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := openssl(t, plain, append([]string{"pkcs8", "-topk8", "-passout", "env:FIELDFLASH_PASSPHRASE"}, c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			pubPEM, err := openssl(t, plain, "pkey", "-pubout")
			if err != nil {
				t.Fatal(err)
			}
			priv, err := DecodePrivateKey(enc, []byte(testPassphrase))
			if err != nil {
				t.Fatalf("key from `openssl pkcs8 -topk8 %s` refused: %v", strings.Join(c.args, " "), err)
			}
			pub, err := DecodePublicKey(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := NewSigningKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			if sk.ID() != KeyID(pub) {
				t.Fatalf("decrypted key has id %s, openssl's public key %s", sk.ID(), KeyID(pub))
			}
			if _, err := DecodePrivateKey(enc, []byte("wrong")); err == nil {
				t.Fatal("wrong passphrase accepted")
			}
		})
	}
}

func TestKeyRoundTripsAndRefusesWrongOrEmptyPassphrase(t *testing.T) {
	defer lowIterations()()
	for _, typ := range []string{KeyEd25519, KeyECDSAP256} {
		priv, err := GenerateKey(typ)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := EncodePrivateKey(priv, nil); err == nil {
			t.Fatal("empty passphrase accepted")
		}
		enc, err := EncodePrivateKey(priv, []byte(testPassphrase))
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodePrivateKey(enc, []byte(testPassphrase))
		if err != nil {
			t.Fatal(err)
		}
		if !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public()) {
			t.Fatalf("%s: key changed on the round trip", typ)
		}
		_, err = DecodePrivateKey(enc, []byte("Correct horse battery staple"))
		if err == nil || !strings.Contains(err.Error(), "passphrase") {
			t.Fatalf("%s: wrong passphrase gave %v", typ, err)
		}
	}
}

// lowIterations makes test keys cheap; the file records its count, so reading is unchanged.
func lowIterations() func() {
	old := KDFIterations
	KDFIterations = 1000
	return func() { KDFIterations = old }
}

// Key files come from other people's machines: a damaged one must fail cleanly, never
// panic, and never make the tool work for minutes.
func FuzzDecodePrivateKey(f *testing.F) {
	// Every input must take microseconds, or the fuzzer stalls: cheap seeds, low caps.
	oldKDF, oldIter, oldMem, oldPar := KDFIterations, maxIterations, maxScryptMemory, maxScryptParallelism
	KDFIterations, maxIterations, maxScryptMemory, maxScryptParallelism = 16, 64, 16<<10, 2
	defer func() {
		KDFIterations, maxIterations, maxScryptMemory, maxScryptParallelism = oldKDF, oldIter, oldMem, oldPar
	}()

	for _, typ := range []string{KeyEd25519, KeyECDSAP256} {
		priv, _ := GenerateKey(typ)
		enc, _ := EncodePrivateKey(priv, []byte("pw"))
		f.Add(enc)
		block, _ := pem.Decode(enc)
		f.Add(block.Bytes)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.Contains(data, []byte("-----BEGIN")) {
			// Feed raw DER through the same decoder as a PEM body.
			data = pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPrivateKey, Bytes: data})
		}
		k, err := DecodePrivateKey(data, []byte("pw"))
		if err == nil {
			if _, err := NewSigningKey(k); err != nil {
				t.Fatalf("decoded a key that cannot sign: %v", err)
			}
		}
	})
}
