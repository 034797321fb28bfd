//! The webhook's shared secret: GitHub/Gitea `X-Hub-Signature-256` HMAC signatures and GitLab's
//! `X-Gitlab-Token`, checked in constant time. Pure: the listener (`http::hooks`) calls it.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The webhook's shared secret. Its debug form never shows it.
#[derive(Clone)]
pub struct HookSecret(Vec<u8>);

impl HookSecret {
    pub fn new(secret: &str) -> HookSecret {
        HookSecret(secret.as_bytes().to_vec())
    }

    /// `sha256=<hex>` for `body` (what a sender puts in `X-Hub-Signature-256`).
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    /// Check a signature header against the body, in constant time.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<(), &'static str> {
        let header = header.ok_or("no X-Hub-Signature-256 header")?;
        let hex = header
            .trim()
            .strip_prefix("sha256=")
            .ok_or("X-Hub-Signature-256 must start with sha256=")?;
        let given = crate::core::secrets::unhex(hex).ok_or("X-Hub-Signature-256 is not hex")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(body);
        mac.verify_slice(&given)
            .map_err(|_| "signature does not match")
    }
}

impl HookSecret {
    /// Check a request: a GitLab token when one is sent, else the GitHub-style signature.
    pub fn check(
        &self,
        body: &[u8],
        signature: Option<&str>,
        gitlab_token: Option<&str>,
    ) -> Result<(), &'static str> {
        match gitlab_token {
            Some(t) if constant_time_eq(t.as_bytes(), &self.0) => Ok(()),
            Some(_) => Err("X-Gitlab-Token does not match"),
            None => self.verify(body, signature),
        }
    }
}

/// Equal bytes, in time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookSecret(*****)")
    }
}
