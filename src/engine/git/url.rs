//! Remote URLs: `https://`, `http://`, `ssh://`, scp-like `user@host:path`, `file://` and
//! local paths. A URL that carries a password or token is refused: secrets come from the
//! environment.

use std::fmt;

use super::GitError;

/// How a remote is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
    Ssh,
    Git,
    Local,
}

/// A parsed remote URL. Its display form is the URL as given (local paths made absolute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    raw: String,
    pub transport: Transport,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl RemoteUrl {
    pub fn parse(url: &str) -> Result<RemoteUrl, GitError> {
        let url = url.trim();
        let bad = |reason: &str| GitError::BadUrl {
            url: redact(url),
            reason: reason.to_string(),
        };
        if url.is_empty() {
            return Err(bad("empty repository URL"));
        }
        let schemes = [
            ("https://", Transport::Https),
            ("http://", Transport::Http),
            ("ssh://", Transport::Ssh),
            ("git+ssh://", Transport::Ssh),
            ("ssh+git://", Transport::Ssh),
            ("git://", Transport::Git),
        ];
        for (prefix, transport) in schemes {
            let Some(rest) = strip_prefix_ci(url, prefix) else {
                continue;
            };
            let authority = rest.split('/').next().unwrap_or_default();
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            if userinfo.is_some_and(|u| u.contains(':')) {
                return Err(bad(
                    "a password or token in the URL is refused: put it in an environment variable and name it with --git-token-env",
                ));
            }
            let (host, port) = split_port(hostport).map_err(|r| bad(&r))?;
            if host.is_empty() {
                return Err(bad("no host"));
            }
            return Ok(RemoteUrl {
                raw: url.to_string(),
                transport,
                host: Some(host),
                port,
                user: userinfo.map(str::to_string),
            });
        }
        if let Some(path) = strip_prefix_ci(url, "file://") {
            if path.is_empty() {
                return Err(bad("no path"));
            }
            return Ok(local(url.to_string()));
        }
        // scp-like: [user@]host:path, where the part before ':' has no '/'.
        if let Some((before, _path)) = url.split_once(':')
            && !before.contains('/')
            && before.len() > 1
        {
            let (user, host) = match before.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h.to_string()),
                None => (None, before.to_string()),
            };
            return Ok(RemoteUrl {
                raw: url.to_string(),
                transport: Transport::Ssh,
                host: Some(host),
                port: None,
                user,
            });
        }
        let abs = std::path::absolute(url).map_err(|e| bad(&e.to_string()))?;
        Ok(local(abs.display().to_string()))
    }

    /// The host and port SSH connects to (22 unless given).
    pub fn ssh_endpoint(&self) -> Option<(&str, u16)> {
        (self.transport == Transport::Ssh)
            .then(|| Some((self.host.as_deref()?, self.port.unwrap_or(22))))
            .flatten()
    }

    /// The URL handed to the Git library.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

fn local(raw: String) -> RemoteUrl {
    RemoteUrl {
        raw,
        transport: Transport::Local,
        host: None,
        port: None,
        user: None,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn split_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in host".to_string())?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("'{p}' is not a port number"))?,
        ),
    };
    Ok((host.to_string(), port))
}

/// The URL with any password replaced, for error messages about a refused URL.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = RemoteUrl::parse("ssh://git@127.0.0.1:2222/srv/repo.git").unwrap();
        assert_eq!(u.transport, Transport::Ssh);
        assert_eq!(u.ssh_endpoint(), Some(("127.0.0.1", 2222)));
        assert_eq!(u.user.as_deref(), Some("git"));
        let u = RemoteUrl::parse("git@github.example.com:org/repo.git").unwrap();
        assert_eq!(u.ssh_endpoint(), Some(("github.example.com", 22)));
        let u = RemoteUrl::parse("https://git.example.com/org/repo.git").unwrap();
        assert_eq!(u.transport, Transport::Https);
        assert_eq!(u.ssh_endpoint(), None);
        let u = RemoteUrl::parse("ssh://[::1]:22/x").unwrap();
        assert_eq!(u.host.as_deref(), Some("::1"));
        let u = RemoteUrl::parse("relative/repo.git").unwrap();
        assert_eq!(u.transport, Transport::Local);
        assert!(u.as_str().starts_with('/'), "{u}");
        assert_eq!(
            RemoteUrl::parse("file:///srv/r.git").unwrap().transport,
            Transport::Local
        );
    }

    #[test]
    fn inline_secrets_are_refused_and_not_echoed() {
        let err = RemoteUrl::parse("https://bot:s3cr3t-token@git.example.com/r.git")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(
            err.contains("https://bot:***@git.example.com/r.git"),
            "{err}"
        );
        assert!(RemoteUrl::parse("ssh://h:notaport/x").is_err());
        assert!(RemoteUrl::parse("").is_err());
    }
}
