//! A `GatewayConfig`'s Git source: its credentials (the Secret it names, through
//! [`super::git_auth`]: values held in memory, never written, never shown), and the fetch into
//! the config's clone cache (`<state dir>/git/<namespace>/<name>`), run off the async threads.
//! Only `https://`, `http://` and SSH repositories are read (never a path on the controller's
//! own disk); an SSH repository needs a Secret (its `known_hosts` is required); without one
//! nothing ambient is used (no SSH agent, no `~/.ssh`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Api;

use super::{Ctx, Error, k8s_io};
use crate::engine::git::{GitAuth, Remote, RemoteUrl, Transport};
use crate::engine::layers::git::{self as git_layers, GitLayerError, GitLayers};
use crate::k8s::crd::GitSource;

/// Where the clones of config `ns/name` are kept.
pub fn cache_dir(state_dir: &Path, ns: &str, name: &str) -> PathBuf {
    state_dir.join("git").join(ns).join(name)
}

/// What sources[`index`] may reach without a Secret: an https:// or http:// repository,
/// anonymously. A repository elsewhere than https, http or SSH is refused with or without one.
pub fn without_secret(index: usize, url: &RemoteUrl, has_secret: bool) -> Result<GitAuth, Error> {
    match url.transport {
        Transport::Https | Transport::Http => {}
        Transport::Ssh if has_secret => {}
        Transport::Ssh => {
            return Err(Error::Invalid(format!(
                "sources[{index}].git: an SSH repository needs secretRef: a Secret with {} and {} (host keys are always verified)",
                super::git_auth::IDENTITY,
                super::git_auth::KNOWN_HOSTS
            )));
        }
        _ => {
            return Err(Error::Invalid(format!(
                "sources[{index}].git.url: {url}: the controller reads only https://, http:// and SSH repositories"
            )));
        }
    }
    Ok(GitAuth {
        given_only: true,
        ..GitAuth::default()
    })
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
    let mut auth = without_secret(index, &url, src.secret_ref.is_some())?;
    if let Some(r) = &src.secret_ref {
        let api: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), ns);
        auth = super::git_auth::read(&api, &format!("sources[{index}].git"), &url, r).await?;
    }
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

    fn url(u: &str) -> RemoteUrl {
        RemoteUrl::parse(u).unwrap()
    }

    #[test]
    fn only_https_http_and_ssh_with_a_secret_are_read() {
        let a = without_secret(0, &url("https://git.example.com/ops.git"), false).unwrap();
        assert!(
            a.given_only && a.password.is_none(),
            "anonymous, nothing ambient"
        );
        without_secret(0, &url("http://git.example.com/ops.git"), false).unwrap();
        without_secret(0, &url("git@git.example.com:ops.git"), true).unwrap();
        let e = without_secret(2, &url("ssh://git@git.example.com/ops.git"), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("sources[2].git: an SSH repository needs secretRef"),
            "{e}"
        );
        for u in [
            "file:///etc",
            "/var/lib/repo",
            "git://git.example.com/ops.git",
        ] {
            for secret in [false, true] {
                let e = without_secret(3, &url(u), secret).unwrap_err().to_string();
                assert!(e.starts_with("sources[3].git.url: "), "{u}: {e}");
            }
        }
    }
}
