//! A Git repository's credentials, from the Secret a resource's `git.secretRef` names, as the
//! engine's [`GitAuth`]: one translation for every Git remote the controller reaches
//! (`GatewayConfig` Git sources and `GatewayBackup.spec.git`). The values stay in memory (the
//! engine hands the key to libssh2 from memory): nothing is written, nothing is shown.
//!
//! The Secret's keys: `username` and `password` (HTTPS; `username` defaults to
//! `x-access-token`), or `identity` (an SSH private key) with an optional `passphrase`, and
//! `known_hosts` (required for SSH: host keys are always verified; there is no switch to skip
//! the check). With a Secret, no SSH agent, `~/.ssh` key or `known_hosts` of the controller's
//! own is used.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Api;

use super::Error;
use crate::engine::git::{GitAuth, KnownHostsText, RemoteUrl, SecretValue, Transport};
use crate::k8s::crd::SecretRef;

/// The Secret keys a Git remote's credentials are read from.
pub const USERNAME: &str = "username";
pub const PASSWORD: &str = "password";
pub const IDENTITY: &str = "identity";
pub const PASSPHRASE: &str = "passphrase";
pub const KNOWN_HOSTS: &str = "known_hosts";

/// A backup's credentials: none without a `secretRef` (a repository that needs none; SSH host
/// keys are still verified against `~/.ssh/known_hosts`, never skipped), else the Secret's.
pub async fn git_auth(
    secrets: &Api<K8sSecret>,
    url: &str,
    r: Option<&SecretRef>,
) -> Result<GitAuth, Error> {
    match r {
        None => Ok(GitAuth::default()),
        Some(r) => {
            let url = RemoteUrl::parse(url).map_err(|e| Error::Invalid(format!("git.url: {e}")))?;
            read(secrets, "git", &url, r).await
        }
    }
}

/// Read Secret `r` and translate its keys for `url` ([`from_secret`]).
pub async fn read(
    secrets: &Api<K8sSecret>,
    field: &str,
    url: &RemoteUrl,
    r: &SecretRef,
) -> Result<GitAuth, Error> {
    let s = secrets
        .get_opt(&r.name)
        .await?
        .ok_or_else(|| Error::NoSecret {
            name: r.name.clone(),
        })?;
    let texts = secret_texts(&s).map_err(|key| Error::Secret {
        name: r.name.clone(),
        key,
        why: "not UTF-8".into(),
    })?;
    from_secret(field, url, &r.name, &texts)
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

/// The credentials Secret `name`'s `keys` give for `url` (`field` names the resource's field
/// in messages, e.g. `sources[0].git`). Pure: what the Secret lacks for the URL is an error
/// naming the Secret and the key.
pub fn from_secret(
    field: &str,
    url: &RemoteUrl,
    name: &str,
    keys: &BTreeMap<String, String>,
) -> Result<GitAuth, Error> {
    let mut auth = GitAuth {
        given_only: true,
        ..GitAuth::default()
    };
    let get = |k: &str| keys.get(k).filter(|v| !v.trim().is_empty());
    let missing = |key: &str, why: &str| Error::Secret {
        name: name.to_string(),
        key: key.to_string(),
        why: why.to_string(),
    };
    let line = |v: &str| v.trim_end_matches(['\n', '\r']).to_string();
    if url.transport == Transport::Ssh {
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
        let key = get(IDENTITY)
            .ok_or_else(|| missing(IDENTITY, "required for an SSH repository (a private key)"))?;
        auth.ssh_key_text = Some(SecretValue::new(key.clone()));
        auth.ssh_passphrase = get(PASSPHRASE).map(|p| SecretValue::new(line(p)));
        return Ok(auth);
    }
    let username = get(USERNAME).map(|u| u.trim().to_string());
    match (&username, get(PASSWORD)) {
        (Some(_), None) => {
            return Err(missing(
                PASSWORD,
                "the Secret has a username but no password",
            ));
        }
        (_, Some(_)) if url.transport != Transport::Https => {
            return Err(Error::Invalid(format!(
                "{field}.url: {url}: a password is only sent over https://"
            )));
        }
        (_, Some(p)) => auth.password = Some(SecretValue::new(line(p))),
        (None, None) => {}
    }
    auth.username = username;
    Ok(auth)
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
        let a = from_secret("sources[0].git", &ssh, "repo-ssh", &k).unwrap();
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
        from_secret("git", &url("git@git.example.com:ops.git"), "s", &k).unwrap();

        for key in [KNOWN_HOSTS, IDENTITY] {
            let mut k = k.clone();
            k.insert(key.into(), " \n".into());
            match from_secret("git", &ssh, "repo-ssh", &k) {
                Err(Error::Secret { name, key: got, .. }) => {
                    assert_eq!((name.as_str(), got.as_str()), ("repo-ssh", key))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn https_takes_a_username_and_password() {
        let https = url("https://git.example.com/ops.git");
        let k = keys(&[(USERNAME, "bot"), (PASSWORD, "CANARY-pw\n")]);
        let a = from_secret("git", &https, "repo-https", &k).unwrap();
        assert_eq!(a.username.as_deref(), Some("bot"));
        assert_eq!(a.password.as_ref().unwrap().expose(), "CANARY-pw");
        assert!(a.given_only);
        assert!(!format!("{a:?}").contains("CANARY"));
        let only_user = keys(&[(USERNAME, "bot")]);
        assert!(matches!(
            from_secret("git", &https, "s", &only_user),
            Err(Error::Secret { key, .. }) if key == PASSWORD
        ));
        // Never a password over plain HTTP.
        let e = from_secret(
            "sources[1].git",
            &url("http://git.example.com/ops.git"),
            "s",
            &k,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "sources[1].git.url: http://git.example.com/ops.git: a password is only sent over https://"
        );
    }
}
