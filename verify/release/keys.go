package release

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key types keygen offers. Both are TUF 1.0 key types every TUF implementation verifies.
const (
	KeyEd25519   = "ed25519"
	KeyECDSAP256 = "ecdsa-p256"
)

// PEM block types.
const (
	pemEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
	pemPrivateKey          = "PRIVATE KEY"
	pemPublicKey           = "PUBLIC KEY"
)

// GenerateKey makes a new private key of the given type (KeyEd25519 or KeyECDSAP256).
func GenerateKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("key type %q: not supported; use %s or %s", keyType, KeyEd25519, KeyECDSAP256)
}

// EncodePrivateKey returns priv as an encrypted PKCS#8 PEM block ("ENCRYPTED PRIVATE KEY",
// PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC), the form `openssl pkcs8` reads.
func EncodePrivateKey(priv crypto.Signer, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("refusing to write a private key with an empty passphrase")
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	enc, err := encryptPKCS8(der, passphrase)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPrivateKey, Bytes: enc}), nil
}

// EncodePublicKey returns pub as an SPKI ("PUBLIC KEY") PEM block.
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// DecodePrivateKey reads a PKCS#8 PEM private key, encrypted (PBES2) or, for keys made
// elsewhere, plain. The passphrase is ignored for a plain key.
func DecodePrivateKey(data, passphrase []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	der := block.Bytes
	switch block.Type {
	case pemEncryptedPrivateKey:
		var err error
		if der, err = decryptPKCS8(der, passphrase); err != nil {
			return nil, err
		}
	case pemPrivateKey:
	default:
		return nil, fmt.Errorf("PEM block %q is not a PKCS#8 private key", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if block.Type == pemEncryptedPrivateKey {
			return nil, errWrongPassphrase
		}
		return nil, err
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s not supported; use P-256", k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("private key type %T not supported; use %s or %s", k, KeyEd25519, KeyECDSAP256)
}

// DecodePublicKey reads an SPKI PEM public key as a TUF key.
func DecodePublicKey(data []byte) (*metadata.Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemPublicKey {
		return nil, fmt.Errorf("PEM block %q is not a public key (want %q)", block.Type, pemPublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	return tufKey(pub)
}

// ReadPublicKey reads the SPKI PEM file at path as a TUF key.
func ReadPublicKey(path string) (*metadata.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := DecodePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return k, nil
}

func tufKey(pub crypto.PublicKey) (*metadata.Key, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s not supported; use P-256", p.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("public key type %T not supported; use %s or %s", pub, KeyEd25519, KeyECDSAP256)
	}
	return metadata.KeyFromPublicKey(pub)
}

// KeyID is the TUF key id: the hex SHA-256 of the key's canonical JSON.
func KeyID(k *metadata.Key) string {
	id, err := k.ID()
	if err != nil {
		// Only a key that cannot be canonically encoded fails, and tufKey never makes one.
		panic(err)
	}
	return id
}

// SigningKey is a private key ready to sign metadata, with its TUF identity.
type SigningKey struct {
	key    *metadata.Key
	signer signature.Signer
}

// NewSigningKey wraps an ed25519 or ECDSA P-256 private key.
func NewSigningKey(priv crypto.Signer) (*SigningKey, error) {
	key, err := tufKey(priv.Public())
	if err != nil {
		return nil, err
	}
	hash := crypto.SHA256
	if _, ok := priv.(ed25519.PrivateKey); ok {
		hash = crypto.Hash(0)
	}
	s, err := signature.LoadSigner(priv, hash)
	if err != nil {
		return nil, err
	}
	return &SigningKey{key: key, signer: s}, nil
}

// ReadSigningKey reads an encrypted PKCS#8 PEM private key file.
func ReadSigningKey(path string, passphrase []byte) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	priv, err := DecodePrivateKey(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return NewSigningKey(priv)
}

// ID is the key's TUF key id.
func (k *SigningKey) ID() string { return KeyID(k.key) }

// Public is the key's public half as a TUF key (a fresh copy each call).
func (k *SigningKey) Public() *metadata.Key {
	c := *k.key
	return &c
}
