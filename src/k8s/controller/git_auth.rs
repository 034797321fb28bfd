//! A Git repository's credentials, from the Secret a resource's `git.secretRef` names, as the
//! engine's [`GitAuth`]. One function for every Git remote the controller reaches
//! (`GatewayBackup.spec.git` today; `GatewayConfig` Git sources are to use it too).

use std::path::Path;

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Api;

use super::Error;
use crate::engine::git::GitAuth;
use crate::k8s::crd::SecretRef;

/// The credentials for a remote: none without a `secretRef` (a repository that needs none; SSH
/// host keys are still verified against `~/.ssh/known_hosts`, never skipped). `dir` is where
/// files made from the Secret's keys (an SSH identity, `known_hosts`) are to be written.
///
/// A `secretRef` is refused for now, saying so: `GitAuth` holds the names of environment
/// variables and files, and taking the values from a Secret (`username`/`password`,
/// `identity`/`passphrase`/`known_hosts`) is being added to the engine; this is the one place
/// to translate them.
pub async fn git_auth(
    _secrets: &Api<K8sSecret>,
    r: Option<&SecretRef>,
    _dir: &Path,
) -> Result<GitAuth, Error> {
    match r {
        None => Ok(GitAuth::default()),
        Some(r) => Err(Error::Invalid(format!(
            "git.secretRef {}: Git credentials from a Secret are not supported by this controller yet; use a repository that needs no credentials, or `mcp-gitops run` with a backup schedule",
            r.name
        ))),
    }
}
