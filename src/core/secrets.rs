//! ContextForge-compatible credential encryption (`utils/services_auth.py` `encode_auth` /
//! `decode_auth`): key = SHA-256(secret), AES-256-GCM with a random 12-byte nonce and no AAD,
//! blob = nonce || ciphertext || tag, text = URL-safe base64 without padding. The plaintext is
//! the compact JSON object of HTTP headers sent upstream.
//!
//! Plaintext credentials only ever live in [`Credentials`], whose `Debug` masks every value.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::core::digest::{Keyed, hex};

/// What a masked secret looks like in any output.
pub const MASK: &str = "*****";

/// URL-safe base64 that accepts input with or without `=` padding, as `decode_auth` does.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a credential could not be encrypted or decrypted. Never carries the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("not valid base64")]
    Base64,
    #[error("too short to be an encrypted credential")]
    TooShort,
    #[error(
        "cannot be decrypted with the given secret (key fingerprint {0}): wrong secret or corrupted value"
    )]
    WrongKey(String),
    #[error("decrypts, but is not a JSON object of header names to strings")]
    NotHeaders,
}

/// The encryption key derived from an `AUTH_ENCRYPTION_SECRET`.
#[derive(Clone)]
pub struct Secret {
    key: [u8; 32],
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(fingerprint {})", self.fingerprint())
    }
}

impl Secret {
    pub fn new(secret: &str) -> Self {
        Secret {
            key: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// The derived 32-byte key, hex (for test vectors).
    pub fn key_hex(&self) -> String {
        hex(&self.key)
    }

    /// A short, non-reversible name for the key, safe for logs: the first 12 hex digits of
    /// SHA-256(key).
    pub fn fingerprint(&self) -> String {
        hex(&Sha256::digest(self.key))[..12].to_string()
    }

    /// Encrypt headers. The nonce is HMAC-SHA256(key, plaintext) cut to 12 bytes (the SIV
    /// construction): the same credentials under the same key always encrypt to the same text,
    /// so an unchanged gateway exports byte-identical documents and Git sees no churn, while
    /// different plaintexts never share a nonce. `decode_auth` reads the nonce from the blob,
    /// so the gateway decrypts these like its own.
    pub fn encrypt(&self, creds: &Credentials) -> String {
        let plaintext = creds.to_json();
        let tag = Keyed::new(&self.key)
            .update(b"mcp-gitops auth_value nonce\0")
            .update(plaintext.as_bytes())
            .tag();
        let nonce: [u8; 12] = tag[..12].try_into().expect("12 bytes");
        self.encrypt_with_nonce(plaintext.as_bytes(), &nonce)
    }

    /// Encrypt `(name, value)` header pairs.
    pub fn encrypt_headers(&self, headers: &[(String, String)]) -> Result<String, CryptoError> {
        Ok(self.encrypt(&Credentials::from_pairs(headers.iter().cloned())))
    }

    /// Encrypt raw plaintext with a given nonce (deterministic; for tests and vectors).
    pub fn encrypt_with_nonce(&self, plaintext: &[u8], nonce: &[u8; 12]) -> String {
        let cipher = Aes256Gcm::new_from_slice(&self.key).expect("32-byte key");
        let sealed = cipher
            .encrypt(&Nonce::from(*nonce), plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = Vec::with_capacity(12 + sealed.len());
        blob.extend_from_slice(nonce);
        blob.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(blob)
    }

    /// Decrypt to the raw plaintext bytes.
    pub fn decrypt_bytes(&self, encoded: &str) -> Result<Vec<u8>, CryptoError> {
        let blob = decode_blob(encoded)?;
        let (nonce, sealed) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
        let cipher = Aes256Gcm::new_from_slice(&self.key).expect("32-byte key");
        cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| CryptoError::WrongKey(self.fingerprint()))
    }

    /// Decrypt an `auth_value` to its headers.
    pub fn decrypt(&self, encoded: &str) -> Result<Credentials, CryptoError> {
        if encoded.is_empty() {
            return Ok(Credentials::default());
        }
        let plain = self.decrypt_bytes(encoded)?;
        let map: Map<String, Value> =
            serde_json::from_slice(&plain).map_err(|_| CryptoError::NotHeaders)?;
        if map.values().any(|v| !v.is_string()) {
            return Err(CryptoError::NotHeaders);
        }
        Ok(Credentials(map))
    }

    /// Re-encrypt a value from this key to another (fresh nonce).
    pub fn rekey(&self, encoded: &str, to: &Secret) -> Result<String, CryptoError> {
        Ok(to.encrypt(&self.decrypt(encoded)?))
    }
}

/// What can be known of an encrypted value without the key: it is base64 (URL-safe or
/// standard, padded or not) of at least a nonce and a tag. Decryption starts here too.
pub fn decode_blob(encoded: &str) -> Result<Vec<u8>, CryptoError> {
    let blob = URL_SAFE_LENIENT
        .decode(encoded.trim())
        .or_else(|_| general_purpose::STANDARD.decode(encoded.trim()))
        .map_err(|_| CryptoError::Base64)?;
    if blob.len() < 12 + 16 {
        return Err(CryptoError::TooShort);
    }
    Ok(blob)
}

/// The keyless check of an `auth_value`: empty (no credential) or a well-formed encrypted
/// value. [`Secret::decrypt`] accepts nothing this refuses.
pub fn check_encoded(encoded: &str) -> Result<(), CryptoError> {
    if encoded.is_empty() {
        return Ok(());
    }
    decode_blob(encoded).map(|_| ())
}

/// Decrypted credential headers, in their original order. `Debug` masks the values.
#[derive(Clone, Default, PartialEq)]
pub struct Credentials(Map<String, Value>);

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, MASK)))
            .finish()
    }
}

impl Credentials {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Credentials(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }

    /// Compact JSON, keys in order, non-ASCII unescaped: byte-identical to orjson's.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a map of strings serialises")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Header names and values.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
    }

    pub fn get(&self, header: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(header))
            .and_then(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_deterministic_per_key_and_plaintext() {
        let s = Secret::new("k");
        let c = Credentials::from_pairs([("X-API-Key".to_string(), "naïve ✓".to_string())]);
        let a = s.encrypt(&c);
        assert_eq!(a, s.encrypt(&c), "same key and plaintext, same text");
        let d = Credentials::from_pairs([("X-API-Key".to_string(), "other".to_string())]);
        assert_ne!(
            a[..16],
            s.encrypt(&d)[..16],
            "different plaintext, different nonce"
        );
        assert_ne!(a, Secret::new("k2").encrypt(&c));
        assert_eq!(s.decrypt(&a).unwrap(), c);
        assert!(!a.contains('='), "no padding");
    }

    #[test]
    fn wrong_key_and_garbage_are_errors_without_plaintext() {
        let a = Secret::new("a");
        let enc = a
            .encrypt_headers(&[("Authorization".into(), "Bearer canary".into())])
            .unwrap();
        let err = Secret::new("b").decrypt(&enc).unwrap_err();
        assert!(matches!(err, CryptoError::WrongKey(_)));
        assert!(!err.to_string().contains("canary"));
        assert_eq!(a.decrypt("!!!").unwrap_err(), CryptoError::Base64);
        assert_eq!(a.decrypt("AAAA").unwrap_err(), CryptoError::TooShort);
    }

    #[test]
    fn debug_never_shows_values() {
        let c =
            Credentials::from_pairs([("Authorization".to_string(), "Bearer canary".to_string())]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("Authorization"));
        assert!(!format!("{:?}", Secret::new("canary")).contains("canary"));
    }

    #[test]
    fn rekey_changes_the_key_not_the_headers() {
        let (a, b) = (Secret::new("key-a"), Secret::new("key-b"));
        let enc = a
            .encrypt_headers(&[("Authorization".into(), "Bearer t".into())])
            .unwrap();
        let re = a.rekey(&enc, &b).unwrap();
        assert_eq!(
            b.decrypt(&re).unwrap().get("authorization"),
            Some("Bearer t")
        );
        assert!(a.decrypt(&re).is_err());
    }
}
