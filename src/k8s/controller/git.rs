//! A `GatewayConfig`'s Git source: the Secret it names as the engine's [`GitAuth`] (values held
//! in memory, never written, never shown), and the fetch into the config's clone cache
//! (`<state dir>/git/<namespace>/<name>`), run off the async threads.
//!
//! The Secret's keys: `username` and `password` (HTTPS; `username` defaults to
//! `x-access-token`), or `identity` (an SSH private key) with an optional `passphrase`, and
//! `known_hosts` (required for SSH: host keys are always verified; there is no switch to skip
//! the check). No SSH agent, `~/.ssh` key or `known_hosts` of the controller's own is used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Api;

use super::{Ctx, Error, k8s_io};
use crate::engine::git::{GitAuth, KnownHostsText, Remote, RemoteUrl, SecretValue, Transport};
use crate::engine::layers::git::{self as git_layers, GitLayerError, GitLayers};
use crate::k8s::crd::GitSource;

/// The Secret keys a Git source reads.
pub const USERNAME: &str = "username";
pub const PASSWORD: &str = "password";
pub const IDENTITY: &str = "identity";
pub const PASSPHRASE: &str = "passphrase";
pub const KNOWN_HOSTS: &str = "known_hosts";

/// Where the clones of config `ns/name` are kept.
pub fn cache_dir(state_dir: &Path, ns: &str, name: &str) -> PathBuf {
    state_dir.join("git").join(ns).join(name)
}

/// A Secret's keys as text (`data` and `stringData`), or which key is not UTF-8.
pub fn secret_texts(s: &K8sSecret) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in s.data.iter().flatten() {
        let text = String::from_utf8(v.0.clone()).map_err(|_| k.clone())?;
        out.insert(k.clone(), text);
    }
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// The credentials of sources[`index`] from its Secret's keys (`secret` None: no secretRef).
/// Pure: what the Secret lacks for the URL is an error naming the Secret and the key.
pub fn auth_from(
    index: usize,
    url: &RemoteUrl,
    secret: Option<(&str, &BTreeMap<String, String>)>,
) -> Result<GitAuth, Error> {
    let mut auth = GitAuth {
        given_only: true,
        ..GitAuth::default()
    };
    let ssh = match url.transport {
        Transport::Ssh => true,
        Transport::Https | Transport::Http => false,
        _ => {
            return Err(Error::Invalid(format!(
                "sources[{index}].git.url: {url}: the controller reads only https://, http:// and SSH repositories"
            )));
        }
    };
    let Some((name, keys)) = secret else {
        if ssh {
            return Err(Error::Invalid(format!(
                "sources[{index}].git: an SSH repository needs secretRef: a Secret with {IDENTITY} and {KNOWN_HOSTS} (host keys are always verified)"
            )));
        }
        return Ok(auth);
    };
    let get = |k: &str| keys.get(k).filter(|v| !v.trim().is_empty());
    let missing = |key: &str, why: &str| Error::Secret {
        name: name.to_string(),
        key: key.to_string(),
        why: why.to_string(),
    };
    if ssh {
        let known = get(KNOWN_HOSTS).ok_or_else(|| {
            missing(
                KNOWN_HOSTS,
                "required for an SSH repository (host keys are always verified)",
            )
        })?;
        auth.known_hosts_text = Some(KnownHostsText {
            text: known.clone(),
            shown: format!("Secret {name}, key {KNOWN_HOSTS}"),
        });
        auth.ssh_key_text = Some(SecretValue::new(get(IDENTITY).ok_or_else(|| {
            missing(IDENTITY, "required for an SSH repository (a private key)")
        })?));
        auth.ssh_passphrase =
            get(PASSPHRASE).map(|p| SecretValue::new(p.trim_end_matches(['\n', '\r'])));
    } else {
        let password = get(PASSWORD).map(|p| p.trim_end_matches(['\n', '\r']));
        let username = get(USERNAME).map(|u| u.trim().to_string());
        match (&username, password) {
            (Some(_), None) => {
                return Err(missing(
                    PASSWORD,
                    "the Secret has a username but no password",
                ));
            }
            (_, Some(_)) if url.transport == Transport::Http => {
                return Err(Error::Invalid(format!(
                    "sources[{index}].git.url: {url}: a password is only sent over https://"
                )));
            }
            (_, Some(p)) => auth.password = Some(SecretValue::new(p)),
            (None, None) => {}
        }
        auth.username = username;
    }
    Ok(auth)
}

/// Fetch sources[`index`] (its Secret read now, the network work on a blocking thread) into
/// the clone cache of config `ns/name`: its layers at the branch head.
pub async fn fetch(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    index: usize,
    src: &GitSource,
) -> Result<GitLayers, Error> {
    let git_err = |e: crate::engine::git::GitError| Error::Git {
        index,
        source: GitLayerError::Git(e),
    };
    let url = RemoteUrl::parse(&src.url).map_err(git_err)?;
    let texts;
    let secret = match &src.secret_ref {
        None => None,
        Some(r) => {
            let api: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), ns);
            let s = api.get_opt(&r.name).await?.ok_or_else(|| Error::NoSecret {
                name: r.name.clone(),
            })?;
            texts = secret_texts(&s).map_err(|key| Error::Secret {
                name: r.name.clone(),
                key,
                why: "not UTF-8".into(),
            })?;
            Some((r.name.as_str(), &texts))
        }
    };
    let auth = auth_from(index, &url, secret)?;
    let remote = Remote::new(&src.url, auth).map_err(git_err)?;
    let cache = cache_dir(&ctx.state_dir, ns, name);
    let (branch, path) = (src.branch.clone(), src.path.clone());
    let label = format!("git-{index}");
    let shown = format!("{ns}/{name}: sources[{index}] {}@{branch}", src.url);
    let got = k8s_io(move || git_layers::fetch(&remote, &cache, &branch, &path, &label))
        .await?
        .map_err(|source| Error::Git { index, source })?;
    tracing::debug!("{shown}: fetched, head {}", got.commit.short());
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn url(u: &str) -> RemoteUrl {
        RemoteUrl::parse(u).unwrap()
    }

    const KEY: &str =
        "-----BEGIN OPENSSH PRIVATE KEY-----\nCANARY-KEY\n-----END OPENSSH PRIVATE KEY-----\n";

    #[test]
    fn ssh_takes_identity_and_known_hosts_from_the_secret_and_nothing_ambient() {
        let ssh = url("ssh://git@git.example.com/ops.git");
        let k = keys(&[
            (IDENTITY, KEY),
            (PASSPHRASE, "CANARY-pass\n"),
            (KNOWN_HOSTS, "git.example.com ssh-ed25519 AAAA\n"),
        ]);
        let a = auth_from(0, &ssh, Some(("repo-ssh", &k))).unwrap();
        assert!(a.given_only && !a.insecure_skip_host_key_check);
        assert_eq!(a.ssh_key_text.as_ref().unwrap().expose(), KEY);
        assert_eq!(a.ssh_passphrase.as_ref().unwrap().expose(), "CANARY-pass");
        let kh = a.known_hosts_text.as_ref().unwrap();
        assert_eq!(kh.shown, "Secret repo-ssh, key known_hosts");
        assert!(a.ssh_key.is_none() && a.known_hosts.is_none());
        // Debug never shows a value.
        let shown = format!("{a:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        // scp-like URLs are SSH too.
        auth_from(0, &url("git@git.example.com:ops.git"), Some(("s", &k))).unwrap();

        for (without, key) in [(KNOWN_HOSTS, KNOWN_HOSTS), (IDENTITY, IDENTITY)] {
            let mut k = k.clone();
            k.insert(without.into(), " \n".into());
            match auth_from(1, &ssh, Some(("repo-ssh", &k))) {
                Err(Error::Secret { name, key: got, .. }) => {
                    assert_eq!((name.as_str(), got.as_str()), ("repo-ssh", key))
                }
                other => panic!("{other:?}"),
            }
        }
        let e = auth_from(2, &ssh, None).unwrap_err().to_string();
        assert!(
            e.starts_with("sources[2].git: an SSH repository needs secretRef"),
            "{e}"
        );
    }

    #[test]
    fn https_takes_a_username_and_password_or_nothing() {
        let https = url("https://git.example.com/ops.git");
        let k = keys(&[(USERNAME, "bot"), (PASSWORD, "CANARY-pw\n")]);
        let a = auth_from(0, &https, Some(("repo-https", &k))).unwrap();
        assert_eq!(a.username.as_deref(), Some("bot"));
        assert_eq!(a.password.as_ref().unwrap().expose(), "CANARY-pw");
        assert!(!format!("{a:?}").contains("CANARY"));
        let a = auth_from(0, &https, None).unwrap();
        assert!(a.password.is_none() && a.given_only, "anonymous");
        let only_user = keys(&[(USERNAME, "bot")]);
        assert!(matches!(
            auth_from(0, &https, Some(("s", &only_user))),
            Err(Error::Secret { key, .. }) if key == PASSWORD
        ));
        // Never a password over plain HTTP; local paths and git:// are not read at all.
        let e = auth_from(0, &url("http://git.example.com/ops.git"), Some(("s", &k)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only sent over https://"), "{e}");
        auth_from(0, &url("http://git.example.com/ops.git"), None).unwrap();
        for u in [
            "file:///etc",
            "/var/lib/repo",
            "git://git.example.com/ops.git",
        ] {
            let e = auth_from(3, &url(u), None).unwrap_err().to_string();
            assert!(e.starts_with("sources[3].git.url: "), "{u}: {e}");
        }
    }
}
