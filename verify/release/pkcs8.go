package release

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo with PBES2 from RFC 8018). The standard
// library parses plain PKCS#8 but neither writes nor reads the encrypted form, so it is done
// here with encoding/asn1. Keys are written with PBKDF2-HMAC-SHA256 and AES-256-CBC, the
// combination `openssl pkcs8 -topk8 -v2 aes-256-cbc` itself writes; scrypt is read as well so
// that keys made with `openssl pkcs8 -topk8 -scrypt` load too.

var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidAES128CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
)

// KDFIterations is the PBKDF2 iteration count for new keys (OWASP's figure for
// PBKDF2-HMAC-SHA256). Reading honours whatever count the file names, within maxIterations.
var KDFIterations = 600_000

// Bounds on the work a key file may ask for when it is read: a damaged or hostile file must
// not make the tool spin for minutes or allocate gigabytes. Variables so the fuzz target can
// lower them.
var (
	maxIterations        = 10_000_000
	maxScryptMemory      = 1 << 30 // bytes: 128·N·r
	maxScryptParallelism = 16
)

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// encryptPKCS8 wraps a DER PKCS#8 PrivateKeyInfo in an EncryptedPrivateKeyInfo.
func encryptPKCS8(der, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase")
	}
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(sha256.New, string(passphrase), salt, KDFIterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(der)%aes.BlockSize
	plain := append(bytes.Clone(der), bytes.Repeat([]byte{byte(pad)}, pad)...)
	enc := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(enc, plain)

	kdfParams, err := asn1.Marshal(pbkdf2Params{
		Salt:           salt,
		IterationCount: KDFIterations,
		PRF:            pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue},
	})
	if err != nil {
		return nil, err
	}
	ivParam, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdfParams}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivParam}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: enc,
	})
}

// errWrongPassphrase is what a bad passphrase looks like from inside: the padding or the
// inner DER does not come out right. It cannot be told apart from a damaged file.
var errWrongPassphrase = errors.New("wrong passphrase, or the key file is damaged")

// decryptPKCS8 unwraps an EncryptedPrivateKeyInfo and returns the DER PrivateKeyInfo.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil {
		return nil, fmt.Errorf("not an encrypted PKCS#8 key: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("not an encrypted PKCS#8 key: trailing bytes")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted with %v; only PBES2 is supported (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, errors.New("malformed PBES2 parameters")
	}

	var keyLen int
	var ivParam []byte
	switch {
	case params.EncryptionScheme.Algorithm.Equal(oidAES256CBC):
		keyLen = 32
	case params.EncryptionScheme.Algorithm.Equal(oidAES128CBC):
		keyLen = 16
	default:
		return nil, fmt.Errorf("cipher %v not supported (use aes-256-cbc)", params.EncryptionScheme.Algorithm)
	}
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &ivParam); err != nil || len(rest) != 0 || len(ivParam) != aes.BlockSize {
		return nil, errors.New("malformed AES-CBC IV")
	}

	var key []byte
	switch kdf := params.KeyDerivationFunc; {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, errors.New("malformed PBKDF2 parameters")
		}
		if p.IterationCount < 1 || p.IterationCount > maxIterations {
			return nil, fmt.Errorf("PBKDF2 iteration count %d out of range", p.IterationCount)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("PBKDF2 key length %d does not fit the cipher", p.KeyLength)
		}
		switch {
		case len(p.PRF.Algorithm) == 0 || p.PRF.Algorithm.Equal(oidHMACWithSHA1):
			return nil, errors.New("PBKDF2 with HMAC-SHA1 is not accepted (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256`)")
		case p.PRF.Algorithm.Equal(oidHMACWithSHA256):
		default:
			return nil, fmt.Errorf("PBKDF2 PRF %v not supported", p.PRF.Algorithm)
		}
		key, err = pbkdf2.Key(sha256.New, string(passphrase), p.Salt, p.IterationCount, keyLen)
		if err != nil {
			return nil, err
		}
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, errors.New("malformed scrypt parameters")
		}
		if p.BlockSize < 1 || p.BlockSize > 64 || p.CostParameter < 2 || p.CostParameter&(p.CostParameter-1) != 0 ||
			p.CostParameter > maxScryptMemory/128/p.BlockSize ||
			p.ParallelizationParameter < 1 || p.ParallelizationParameter > maxScryptParallelism {
			return nil, fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range", p.CostParameter, p.BlockSize, p.ParallelizationParameter)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("scrypt key length %d does not fit the cipher", p.KeyLength)
		}
		key, err = scrypt.Key(passphrase, p.Salt, p.CostParameter, p.BlockSize, p.ParallelizationParameter, keyLen)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("key derivation %v not supported", kdf.Algorithm)
	}

	if len(info.EncryptedData) == 0 || len(info.EncryptedData)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted key length is not a multiple of the AES block size")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(info.EncryptedData))
	cipher.NewCBCDecrypter(block, ivParam).CryptBlocks(plain, info.EncryptedData)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, errWrongPassphrase
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, errWrongPassphrase
		}
	}
	return plain[:len(plain)-pad], nil
}
