package mcuboot

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// VerifyHash streams the hashed region (header, payload, protected TLVs) of the image in r
// through every hash the image carries a TLV for and compares. Memory stays flat whatever
// img_size says.
func (img *Image) VerifyHash(r io.ReaderAt) error {
	_, err := img.digest(r)
	return err
}

// digest checks every hash TLV and returns the digest signatures are made over: the
// SHA256 one when present, else the image's only hash.
func (img *Image) digest(r io.ReaderAt) ([]byte, error) {
	if img.Header.Flags&flagEncryptedAnyMask != 0 {
		// imgtool hashes the plaintext and then encrypts the payload, so the hash can only
		// be checked by whoever holds the decryption key (the bootloader).
		return nil, fmt.Errorf("header flags 0x%08x: the payload is encrypted and its hash covers the plaintext: %w", img.Header.Flags, ErrEncrypted)
	}
	hashes := map[uint16]hash.Hash{}
	var writers []io.Writer
	for _, t := range img.TLVs {
		var h hash.Hash
		switch t.Type {
		case TLVSHA256:
			h = sha256.New()
		case TLVSHA384:
			h = sha512.New384()
		case TLVSHA512:
			h = sha512.New()
		default:
			continue
		}
		hashes[t.Type] = h
		writers = append(writers, h)
	}
	end := img.HashedEnd()
	n, err := io.Copy(io.MultiWriter(writers...), io.NewSectionReader(r, 0, end))
	if err != nil {
		return nil, fmt.Errorf("reading the hashed region: %w", err)
	}
	if n != end {
		return nil, fmt.Errorf("hashed region ends at 0x%x but only 0x%x bytes could be read: %w", end, n, ErrTruncated)
	}
	var primary []byte
	for _, t := range img.TLVs {
		h, ok := hashes[t.Type]
		if !ok {
			continue
		}
		sum := h.Sum(nil)
		if !bytes.Equal(sum, t.Value) {
			return nil, fmt.Errorf("hash TLV 0x%x says %s, the image's bytes [0, 0x%x) hash to %s: %w",
				t.Type, hex.EncodeToString(t.Value), end, hex.EncodeToString(sum), ErrHashMismatch)
		}
		if primary == nil || t.Type == TLVSHA256 {
			primary = sum
		}
	}
	return primary, nil
}

// KeyHash is the KEYHASH TLV value for pub: SHA-256 of its DER SubjectPublicKeyInfo.
func KeyHash(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key of type %T: %w", pub, err)
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// VerifySignature checks the hash (as VerifyHash) and then that the image is signed by
// pub: an ed25519.PublicKey (ED25519 TLV, over the image digest) or an *ecdsa.PublicKey
// on P-256 (ECDSASIG TLV, DER, over the SHA-256 digest).
//
// As in MCUboot's bootutil_img_validate, a signature TLV counts only for the key named
// by the KEYHASH (or PUBKEY) TLV in front of it; a signature with no key TLV before it
// is ignored. So an image whose KEYHASH names pub but whose signature was made by another
// key fails with ErrBadSignature, and an image signed for another key fails with
// ErrOtherKey.
func (img *Image) VerifySignature(r io.ReaderAt, pub crypto.PublicKey) error {
	if p, ok := pub.(*ed25519.PublicKey); ok && p != nil {
		pub = *p
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("public key of type %T: %w", pub, err)
	}
	keyHash := sha256.Sum256(der)
	digest, err := img.digest(r)
	if err != nil {
		return err
	}

	var (
		keyMatched  bool     // the key TLV in front of the current position names pub
		otherKeys   []string // key hashes the image names that are not pub
		badSig      error
		sawSigTypes []uint16
	)
	for _, t := range img.TLVs {
		if t.Protected {
			continue
		}
		switch t.Type {
		case TLVKeyHash:
			keyMatched = bytes.Equal(t.Value, keyHash[:])
			if !keyMatched {
				otherKeys = append(otherKeys, hex.EncodeToString(t.Value))
			}
		case TLVPubKey:
			keyMatched = bytes.Equal(t.Value, der)
			if !keyMatched {
				h := sha256.Sum256(t.Value)
				otherKeys = append(otherKeys, hex.EncodeToString(h[:]))
			}
		case TLVRSA2048, TLVECDSA224, TLVECDSASig, TLVRSA3072, TLVED25519, TLVSigPure:
			sawSigTypes = append(sawSigTypes, t.Type)
			if !keyMatched {
				continue
			}
			err := checkSignature(pub, t, digest)
			if err == nil {
				return nil
			}
			badSig = err
		}
	}
	switch {
	case badSig != nil:
		return badSig
	case len(sawSigTypes) == 0:
		return fmt.Errorf("no signature TLV in the TLV area at 0x%x: %w", img.TLVOffset, ErrNoSignature)
	case len(otherKeys) > 0:
		return fmt.Errorf("the image names signing key %s, the trusted key's hash is %s: %w",
			otherKeys[0], hex.EncodeToString(keyHash[:]), ErrOtherKey)
	default:
		return fmt.Errorf("no KEYHASH or PUBKEY TLV names the key of signature TLV 0x%x, so MCUboot would ignore it: %w",
			sawSigTypes[0], ErrOtherKey)
	}
}

func checkSignature(pub crypto.PublicKey, t TLV, digest []byte) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if t.Type != TLVED25519 {
			return fmt.Errorf("signature TLV 0x%x at 0x%x is not an Ed25519 signature, but its key hash names the Ed25519 key: %w", t.Type, t.Offset, ErrBadSignature)
		}
		if len(t.Value) != ed25519.SignatureSize || !ed25519.Verify(k, digest, t.Value) {
			return fmt.Errorf("ED25519 signature at 0x%x is not by the key its KEYHASH names: %w", t.Offset, ErrBadSignature)
		}
		return nil
	case *ecdsa.PublicKey:
		if t.Type != TLVECDSASig {
			return fmt.Errorf("signature TLV 0x%x at 0x%x is not an ECDSA signature, but its key hash names the ECDSA key: %w", t.Type, t.Offset, ErrBadSignature)
		}
		if k.Curve != elliptic.P256() || len(digest) != sha256.Size {
			return fmt.Errorf("ECDSA signature at 0x%x: only P-256 with SHA-256 is supported: %w", t.Offset, ErrBadSignature)
		}
		if !ecdsa.VerifyASN1(k, digest, t.Value) {
			return fmt.Errorf("ECDSA signature at 0x%x is not by the key its KEYHASH names: %w", t.Offset, ErrBadSignature)
		}
		return nil
	default:
		return fmt.Errorf("public key of type %T is not supported (Ed25519 and ECDSA P-256 are): %w", pub, ErrBadSignature)
	}
}
