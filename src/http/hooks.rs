//! `POST /hooks/git`: a push webhook. GitHub and Gitea sign the raw body: `X-Hub-Signature-256`
//! is `sha256=` + hex HMAC-SHA256 with the shared secret; GitLab sends the secret itself as
//! `X-Gitlab-Token`. Either is checked in constant time before anything else is read. Signed
//! requests are rate limited together; wrongly signed ones are counted per client address with
//! a limit of their own, so a bad client never holds up signed pushes. A push names the
//! repository and branch, and only the environments reading that branch of that repository
//! fetch.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::core::webhook::HookSecret;
pub use crate::core::window::SlidingWindow as Window;

/// At most `per_minute` requests (at least one) in any 60 s.
pub fn window(per_minute: u32) -> Window {
    Window::new(per_minute.max(1) as usize)
}

/// Wrongly signed requests, counted per client: an IPv4 address, or an IPv6 /64 (what one
/// host is usually given). Each client has its own window; at most [`Failures::MAX_CLIENTS`]
/// are tracked, and past that the newcomers share one window.
pub struct Failures {
    per_minute: u32,
    clients: HashMap<IpAddr, Window>,
}

impl Failures {
    pub const MAX_CLIENTS: usize = 4096;

    pub fn new(per_minute: u32) -> Failures {
        Failures {
            per_minute,
            clients: HashMap::new(),
        }
    }

    /// The window an address counts in: an IPv4 address, an IPv6 /64.
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("mapped")),
            v4 => v4,
        }
    }

    /// Count a failure from `ip` at `now`, or say how long that client must wait.
    pub fn record(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut key = Self::key(ip);
        if !self.clients.contains_key(&key) && self.clients.len() >= Self::MAX_CLIENTS {
            self.clients.retain(|_, w| w.expire(now));
            if self.clients.len() >= Self::MAX_CLIENTS {
                key = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            }
        }
        let per_minute = self.per_minute;
        self.clients
            .entry(key)
            .or_insert_with(|| window(per_minute))
            .admit(now)
    }

    /// How long `ip` must wait before another failure would be counted (None: it need not),
    /// counting nothing: a client over its limit is refused before it is even checked.
    pub fn blocked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut key = Self::key(ip);
        if !self.clients.contains_key(&key) {
            if self.clients.len() < Self::MAX_CLIENTS {
                return None;
            }
            key = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        }
        self.clients.get_mut(&key)?.wait(now)
    }
}

/// What a push event names: repository URLs (any of them may be configured) and the branch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Push {
    pub urls: Vec<String>,
    pub full_name: Option<String>,
    pub branch: Option<String>,
}

/// Read a push payload (GitHub, Gitea, GitLab shapes). Anything else names nothing.
pub fn parse_push(body: &[u8]) -> Push {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Push::default();
    };
    let repo = v.get("repository").or_else(|| v.get("project"));
    let s = |x: Option<&Value>, k: &str| {
        x.and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let urls = [
        "clone_url",
        "ssh_url",
        "git_url",
        "html_url",
        "url",
        "git_http_url",
        "git_ssh_url",
    ]
    .iter()
    .filter_map(|k| s(repo, k))
    .collect();
    let branch = v
        .get("ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("refs/heads/"))
        .map(str::to_string);
    Push {
        urls,
        full_name: s(repo, "full_name").or_else(|| s(repo, "path_with_namespace")),
        branch,
    }
}

/// A comparable form of a repository URL: host and path, lower-case, without scheme, user,
/// port or `.git` (`git@github.com:Acme/Config.git` and `https://github.com/acme/config`
/// are the same repository).
pub fn repo_identity(url: &str) -> String {
    let mut u = url.trim().to_ascii_lowercase();
    if let Some(i) = u.find("://") {
        u = u[i + 3..].to_string();
    }
    if let Some(i) = u.find('@')
        && !u[..i].contains('/')
    {
        u = u[i + 1..].to_string();
    }
    // scp-like host:path, or host:port/path
    if let Some(i) = u.find(':')
        && !u[..i].contains('/')
    {
        let rest = &u[i + 1..];
        let path = match rest.find('/') {
            Some(j) if rest[..j].chars().all(|c| c.is_ascii_digit()) => &rest[j + 1..],
            _ => rest,
        };
        u = format!("{}/{}", &u[..i], path);
    }
    u.trim_end_matches('/').trim_end_matches(".git").to_string()
}

impl Push {
    /// Whether the push concerns `branch` of the repository at `url`. A payload that names no
    /// repository concerns every repository; one that names no branch, every branch.
    pub fn concerns(&self, url: &str, branch: &str) -> bool {
        if self.branch.as_deref().is_some_and(|b| b != branch) {
            return false;
        }
        if self.urls.is_empty() && self.full_name.is_none() {
            return true;
        }
        let want = repo_identity(url);
        self.urls.iter().any(|u| repo_identity(u) == want)
            || self
                .full_name
                .as_deref()
                .is_some_and(|n| want.ends_with(&format!("/{}", n.to_ascii_lowercase())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked() {
        let s = HookSecret::new("It's a Secret to Everybody");
        // GitHub's documented example.
        let body = b"Hello, World!";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(s.sign(body), good);
        assert_eq!(s.verify(body, Some(good)), Ok(()));
        let cases = [
            (None, "no X-Hub-Signature-256 header"),
            (
                Some("sha1=abc"),
                "X-Hub-Signature-256 must start with sha256=",
            ),
            (Some("sha256=zz"), "X-Hub-Signature-256 is not hex"),
            (
                Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18"),
                "signature does not match",
            ),
        ];
        for (header, why) in cases {
            assert_eq!(s.verify(body, header), Err(why), "{header:?}");
        }
        assert_eq!(
            s.verify(b"Hello, World?", Some(good)),
            Err("signature does not match")
        );
        assert_eq!(format!("{s:?}"), "HookSecret(*****)");
        // GitLab: the secret itself, as a header.
        assert_eq!(
            s.check(body, None, Some("It's a Secret to Everybody")),
            Ok(())
        );
        assert_eq!(
            s.check(body, Some(good), Some("It's a Secret to Everybod")),
            Err("X-Gitlab-Token does not match")
        );
        assert_eq!(s.check(body, Some(good), None), Ok(()));
        assert_eq!(
            s.check(body, None, None),
            Err("no X-Hub-Signature-256 header")
        );
    }

    #[test]
    fn the_window_admits_per_minute() {
        let mut w = window(2);
        let t0 = Instant::now();
        assert!(w.admit(t0).is_ok());
        assert!(w.admit(t0 + Duration::from_secs(1)).is_ok());
        let wait = w.admit(t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(w.admit(t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn failures_are_counted_per_client() {
        let mut f = Failures::new(2);
        let t0 = Instant::now();
        let bad: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(f.record(bad, t0).is_ok());
        assert!(f.record(bad, t0).is_ok());
        assert_eq!(f.record(bad, t0), Err(Duration::from_secs(60)));
        // Another client is not affected; one host's IPv6 addresses are one client.
        assert!(f.record("192.0.2.8".parse().unwrap(), t0).is_ok());
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(f.record(v6("2001:db8:0:1::1"), t0).is_ok());
        assert!(f.record(v6("2001:db8:0:1::2"), t0).is_ok());
        assert!(f.record(v6("2001:db8:0:1:ffff::3"), t0).is_err());
        assert!(f.record(v6("2001:db8:0:2::1"), t0).is_ok());
        assert!(f.record(v6("::ffff:192.0.2.7"), t0).is_err(), "mapped IPv4");
        // A minute later the bad client may try again.
        assert!(f.record(bad, t0 + Duration::from_secs(60)).is_ok());
        // Many clients: expired ones are forgotten, then newcomers share one window.
        let mut f = Failures::new(1);
        for i in 0..Failures::MAX_CLIENTS as u32 {
            assert!(f.record(IpAddr::V4(i.into()), t0).is_ok());
        }
        let later = t0 + Duration::from_secs(61);
        assert!(f.record("198.51.100.1".parse().unwrap(), later).is_ok());
        assert_eq!(f.clients.len(), 1, "the expired windows were dropped");
        let mut f = Failures::new(1);
        for i in 0..Failures::MAX_CLIENTS as u32 {
            assert!(f.record(IpAddr::V4(i.into()), t0).is_ok());
        }
        assert!(f.record("198.51.100.1".parse().unwrap(), t0).is_ok());
        assert!(f.record("198.51.100.2".parse().unwrap(), t0).is_err());
        assert_eq!(f.clients.len(), Failures::MAX_CLIENTS + 1);
    }

    #[test]
    fn pushes_concern_their_repository_and_branch() {
        let github = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/config",
            "clone_url":"https://github.com/acme/config.git","ssh_url":"git@github.com:acme/config.git"}}"#;
        let p = parse_push(github);
        assert_eq!(p.branch.as_deref(), Some("main"));
        assert!(p.concerns("git@github.com:Acme/Config.git", "main"));
        assert!(p.concerns("ssh://git@github.com:22/acme/config", "main"));
        assert!(p.concerns("https://github.com/acme/config", "main"));
        assert!(!p.concerns("https://github.com/acme/config", "prod"));
        assert!(!p.concerns("https://github.com/acme/other.git", "main"));
        let local =
            br#"{"ref":"refs/heads/main","repository":{"clone_url":"/srv/git/config.git"}}"#;
        assert!(parse_push(local).concerns("/srv/git/config.git", "main"));
        // No repository named (a ping, a hand-made request): every repository.
        assert!(parse_push(b"{}").concerns("/srv/git/config.git", "main"));
        assert!(parse_push(b"not json").concerns("/srv/git/config.git", "main"));
        let tag = br#"{"ref":"refs/tags/v1","repository":{"full_name":"acme/config"}}"#;
        assert!(parse_push(tag).concerns("git@github.com:acme/config.git", "main"));
    }
}
