//! OpenSSH `known_hosts` checking for SSH remotes: plain and hashed (`|1|salt|hash`) host
//! patterns, `[host]:port` entries, `*`/`?` wildcards, `!` negation and `@revoked` markers.
//! `@cert-authority` lines are not supported and never match.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::core::digest::verify_hmac_sha1;

/// What `known_hosts` says about the key a server offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds exactly this key.
    Trusted,
    /// No line for this host holds a key of this type.
    Unknown,
    /// A line for this host holds a different key of the same type (1-based line number).
    Changed { line: usize },
    /// The key is marked `@revoked` (1-based line number).
    Revoked { line: usize },
}

/// The name a host has in `known_hosts`: `host` on port 22, `[host]:port` otherwise.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...).
pub fn key_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// Check the key `blob` offered by `host:port` against the text of a `known_hosts` file.
pub fn check(known_hosts: &str, host: &str, port: u16, blob: &[u8]) -> Verdict {
    let name = host_name(host, port);
    let offered_type = key_type(blob);
    let mut verdict = Verdict::Unknown;
    for (i, raw) in known_hosts.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = first.strip_prefix('@');
        if marker.is_some() {
            first = fields.next().unwrap_or_default();
        }
        let (Some(_kind), Some(key)) = (fields.next(), fields.next()) else {
            continue;
        };
        if marker == Some("cert-authority") || !patterns_match(first, &name) {
            continue;
        }
        let Ok(known) = STANDARD.decode(key) else {
            continue;
        };
        let same_key = known == blob;
        match marker {
            Some("revoked") if same_key => return Verdict::Revoked { line: i + 1 },
            Some(_) => {}
            None if same_key => verdict = Verdict::Trusted,
            None if key_type(&known) == offered_type && verdict == Verdict::Unknown => {
                verdict = Verdict::Changed { line: i + 1 };
            }
            None => {}
        }
    }
    verdict
}

/// A comma-separated pattern list matches when a positive pattern matches and no negated one
/// does; a hashed entry matches when its HMAC-SHA1 of the name is equal.
fn patterns_match(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut matched = false;
    for p in patterns.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, name) {
                return false;
            }
        } else if wildcard(p, name) {
            matched = true;
        }
    }
    matched
}

fn hashed_match(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    verify_hmac_sha1(&salt, name.as_bytes(), &hash)
}

/// `*` and `?` glob matching, case-insensitive as OpenSSH does for host names.
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (kind.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn line(hosts: &str, b: &[u8]) -> String {
        format!("{hosts} {} {}\n", key_type(b).unwrap(), STANDARD.encode(b))
    }

    #[test]
    fn plain_ported_wildcard_and_negated_patterns() {
        let k = blob("ssh-ed25519", b"key-one");
        let other = blob("ssh-ed25519", b"key-two");
        let rsa = blob("ssh-rsa", b"rsa-key");
        let file = line("git.example.com,10.0.0.1", &k) + &line("[127.0.0.1]:2222", &k);
        assert_eq!(check(&file, "git.example.com", 22, &k), Verdict::Trusted);
        assert_eq!(check(&file, "127.0.0.1", 2222, &k), Verdict::Trusted);
        assert_eq!(
            check(&file, "127.0.0.1", 22, &k),
            Verdict::Unknown,
            "port matters"
        );
        assert_eq!(
            check(&file, "git.example.com", 22, &other),
            Verdict::Changed { line: 1 }
        );
        assert_eq!(
            check(&file, "git.example.com", 22, &rsa),
            Verdict::Unknown,
            "a key of another type is not known"
        );
        let wild = line("*.example.com,!evil.example.com", &k);
        assert_eq!(check(&wild, "Git.Example.com", 22, &k), Verdict::Trusted);
        assert_eq!(check(&wild, "evil.example.com", 22, &k), Verdict::Unknown);
        let revoked = format!("@revoked {}", line("*", &k)) + &line("git.example.com", &k);
        assert_eq!(
            check(&revoked, "git.example.com", 22, &k),
            Verdict::Revoked { line: 1 }
        );
        let ca = format!("@cert-authority {}", line("*", &k));
        assert_eq!(check(&ca, "git.example.com", 22, &k), Verdict::Unknown);
        assert_eq!(
            check("# comment\n\ngarbage\n", "x", 22, &k),
            Verdict::Unknown
        );
    }

    #[test]
    fn hashed_entries_match_their_host_only() {
        let k = blob("ssh-ed25519", b"key-one");
        let salt = b"0123456789abcdef0123";
        let hash = crate::core::digest::hmac_sha1(salt, b"[127.0.0.1]:2222").unwrap();
        let hosts = format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(hash));
        let file = line(&hosts, &k);
        assert_eq!(check(&file, "127.0.0.1", 2222, &k), Verdict::Trusted);
        assert_eq!(check(&file, "127.0.0.1", 2223, &k), Verdict::Unknown);
    }
}
