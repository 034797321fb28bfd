//! Hex text and keyed digests: the one place bytes become hex (and back) and HMACs are taken.
//! Tag checks compare in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// The value of one hex digit (either case).
pub fn nibble(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// Parse hex (either case); `None` for an odd length or any non-hex character.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Equal bytes, in time that depends on the lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 under a key, fed in parts.
#[derive(Clone)]
pub struct Keyed(Hmac<Sha256>);

impl Keyed {
    pub fn new(key: &[u8]) -> Keyed {
        Keyed(<Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length"))
    }

    pub fn update(mut self, data: &[u8]) -> Keyed {
        self.0.update(data);
        self
    }

    /// The 32-byte tag.
    pub fn tag(self) -> [u8; 32] {
        self.0.finalize().into_bytes().into()
    }

    /// The tag, hex.
    pub fn hex(self) -> String {
        hex(&self.tag())
    }

    /// Whether `tag` is this digest's tag, compared in constant time.
    pub fn verify(self, tag: &[u8]) -> bool {
        self.0.verify_slice(tag).is_ok()
    }
}

/// Whether `tag` is HMAC-SHA1(key, data) (OpenSSH hashed host names), in constant time.
pub fn verify_hmac_sha1(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    hmac_sha1(key, data).is_some_and(|t| constant_time_eq(&t, tag))
}

/// HMAC-SHA1(key, data).
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Option<[u8; 20]> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let all: Vec<u8> = (0..=255).collect();
        let h = hex(&all);
        assert_eq!(&h[..8], "00010203");
        assert_eq!(&h[h.len() - 4..], "feff");
        assert_eq!(unhex(&h).unwrap(), all);
        assert_eq!(unhex("ABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(unhex("").unwrap(), Vec::<u8>::new());
        for bad in ["a", "abc", "zz", "+f", "-1", "0x", "é0"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keyed_digest_matches_rfc_4231() {
        // RFC 4231 test case 2.
        let k = Keyed::new(b"Jefe")
            .update(b"what do ya want ")
            .update(b"for nothing?");
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(k.clone().hex(), want);
        assert!(k.clone().verify(&unhex(want).unwrap()));
        let mut wrong = unhex(want).unwrap();
        wrong[31] ^= 1;
        assert!(!k.clone().verify(&wrong));
        assert!(!k.verify(&wrong[..31]));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202 test case 2.
        let want = unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap();
        assert!(verify_hmac_sha1(
            b"Jefe",
            b"what do ya want for nothing?",
            &want
        ));
        assert!(!verify_hmac_sha1(
            b"Jefe",
            b"what do ya want for nothing!",
            &want
        ));
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
