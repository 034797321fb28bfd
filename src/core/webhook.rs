//! The webhook's shared secret: GitHub/Gitea `X-Hub-Signature-256` HMAC signatures and GitLab's
//! `X-Gitlab-Token`, checked in constant time. Pure: the listener (`http::hooks`) calls it.

use std::fmt;

use crate::core::digest::{Keyed, constant_time_eq, unhex};

/// The webhook's shared secret. Its debug form never shows it.
#[derive(Clone)]
pub struct HookSecret(Vec<u8>);

impl HookSecret {
    pub fn new(secret: &str) -> HookSecret {
        HookSecret(secret.as_bytes().to_vec())
    }

    /// `sha256=<hex>` for `body` (what a sender puts in `X-Hub-Signature-256`).
    pub fn sign(&self, body: &[u8]) -> String {
        format!("sha256={}", Keyed::new(&self.0).update(body).hex())
    }

    /// Check a signature header against the body, in constant time.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<(), &'static str> {
        let header = header.ok_or("no X-Hub-Signature-256 header")?;
        let hex = header
            .trim()
            .strip_prefix("sha256=")
            .ok_or("X-Hub-Signature-256 must start with sha256=")?;
        let given = unhex(hex).ok_or("X-Hub-Signature-256 is not hex")?;
        if Keyed::new(&self.0).update(body).verify(&given) {
            Ok(())
        } else {
            Err("signature does not match")
        }
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

impl fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookSecret(*****)")
    }
}
