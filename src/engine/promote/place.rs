//! Placing entities into an environment directory: the one step `promote` and an import
//! committed to an environment's Git source share. The incoming entities' credentials are
//! decrypted with the source key and encrypted with the target's; they are compared with what
//! the target holds now (credentials by their decrypted value), and the files that change are
//! planned (see [`super::write`]).

use std::path::Path;

use crate::core::changes::{self, Changes};
use crate::core::document::Entities;
use crate::core::document::validate::identity;
use crate::core::kind::Kind;
use crate::core::secrets::Secret;
use crate::engine::environment::Environment;

use super::{PromoteError, write};

/// Where entities go and with which keys.
pub struct PlaceKeys<'a> {
    /// Decrypts the incoming credentials.
    pub source: Option<&'a Secret>,
    /// Encrypts them for the target (and decrypts the target's own for the comparison).
    pub target: Option<&'a Secret>,
    /// Names the source in errors (a directory, `request body`).
    pub source_name: &'a str,
    /// The flag or field that sets each key, for errors.
    pub source_flag: &'static str,
    pub target_flag: &'static str,
}

/// What placing entities changes in the target directory.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub changes: Changes,
    /// Repository-relative files with their new content (empty: nothing changes).
    pub files: Vec<(String, Vec<u8>)>,
}

/// The target's current versions of the `incoming` entities (by kind and identity), the
/// credentials of either side: whether any key is needed at all.
pub fn needs_keys(target: &Environment, incoming: &Entities) -> bool {
    let mut current = target.document.entities.clone();
    keep_only(&mut current, incoming);
    has_credentials(incoming) || has_credentials(&current)
}

/// Place `incoming` into the environment `target` read from `to_dir` (repository-relative
/// `to_rel`): what changes, and the new contents of the files that change. Nothing is written.
pub fn place(
    to_dir: &Path,
    to_rel: &str,
    target: &Environment,
    incoming: &Entities,
    keys: &PlaceKeys<'_>,
) -> Result<Placement, PromoteError> {
    let (placed, changes) = compare(to_rel, target, incoming, keys)?;
    let files = files(to_dir, to_rel, &placed, &changes)?;
    Ok(Placement { changes, files })
}

/// `incoming` with its credentials encrypted for the target, and how it differs from what
/// `target` (at repository-relative `to_rel`) holds now, credentials compared by their
/// decrypted value.
pub fn compare(
    to_rel: &str,
    target: &Environment,
    incoming: &Entities,
    keys: &PlaceKeys<'_>,
) -> Result<(Entities, Changes), PromoteError> {
    let mut current = target.document.entities.clone();
    keep_only(&mut current, incoming);
    let mut placed = incoming.clone();
    rekey(&mut placed, keys)?;
    let (cmp_new, cmp_old) = (
        fingerprinted(&placed, keys.target, to_rel, keys.target_flag)?,
        fingerprinted(&current, keys.target, to_rel, keys.target_flag)?,
    );
    Ok((placed, changes::between(Some(&cmp_old), &cmp_new)))
}

/// The new contents of the files of `to_dir` that hold the entities of `placed` that
/// `changes` names (see [`super::write`]); empty when nothing changes.
pub fn files(
    to_dir: &Path,
    to_rel: &str,
    placed: &Entities,
    changes: &Changes,
) -> Result<Vec<(String, Vec<u8>)>, PromoteError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let changed: Vec<(Kind, String)> = changes
        .items
        .iter()
        .map(|c| (c.kind, identity(c.kind, &c.key)))
        .collect();
    write::plan(to_dir, to_rel, placed, &changed)
}

/// Decrypt every credential with the source key and encrypt it with the target key.
fn rekey(e: &mut Entities, keys: &PlaceKeys<'_>) -> Result<(), PromoteError> {
    let dir = keys.source_name;
    for (kind, name, value) in credentials(e) {
        let Some(v) = value.as_deref() else { continue };
        let no_key = |flag| PromoteError::NoKey {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            flag,
        };
        let from = keys.source.ok_or_else(|| no_key(keys.source_flag))?;
        let to = keys.target.ok_or_else(|| no_key(keys.target_flag))?;
        let creds = from.decrypt(v).map_err(|source| PromoteError::Credential {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            source,
        })?;
        *value = Some(to.encrypt(&creds));
    }
    Ok(())
}

/// Every credential slot of `e`: (kind, name, the encrypted value).
fn credentials(e: &mut Entities) -> impl Iterator<Item = (Kind, &String, &mut Option<String>)> {
    e.tools
        .iter_mut()
        .map(|t| (Kind::Tool, &t.name, &mut t.auth_value))
        .chain(
            e.gateways
                .iter_mut()
                .map(|g| (Kind::Gateway, &g.name, &mut g.auth_value)),
        )
}

pub(super) fn has_credentials(e: &Entities) -> bool {
    e.tools.iter().any(|t| t.auth_value.is_some())
        || e.gateways.iter().any(|g| g.auth_value.is_some())
}

/// Keep only the entities of `e` that `wanted` also has (by kind and identity).
pub(crate) fn keep_only(e: &mut Entities, wanted: &Entities) {
    let ids = identities(wanted);
    retain(e, &|k, n| ids.contains(&(k, identity(k, n))));
}

/// Every (kind, identity) of `e`.
pub(crate) fn identities(e: &Entities) -> std::collections::BTreeSet<(Kind, String)> {
    Kind::ALL
        .iter()
        .flat_map(|k| e.keys(*k).into_iter().map(move |n| (*k, identity(*k, n))))
        .collect()
}

fn retain(e: &mut Entities, keep: &dyn Fn(Kind, &str) -> bool) {
    e.tools.retain(|x| keep(Kind::Tool, &x.name));
    e.gateways.retain(|x| keep(Kind::Gateway, &x.name));
    e.servers.retain(|x| keep(Kind::Server, &x.name));
    e.prompts.retain(|x| keep(Kind::Prompt, &x.name));
    e.resources.retain(|x| keep(Kind::Resource, &x.uri));
    e.roots.retain(|x| keep(Kind::Root, &x.uri));
}

/// A copy whose `auth_value`s are replaced by a digest of their decrypted value, so that
/// equal credentials compare equal whatever their nonce. A value the key cannot decrypt is an
/// error: the target key is wrong.
fn fingerprinted(
    e: &Entities,
    key: Option<&Secret>,
    dir: &str,
    flag: &'static str,
) -> Result<Entities, PromoteError> {
    let mut out = e.clone();
    for (kind, name, value) in credentials(&mut out) {
        let Some(v) = value.as_deref() else { continue };
        let key = key.ok_or_else(|| PromoteError::NoKey {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            flag,
        })?;
        let creds = key.decrypt(v).map_err(|source| PromoteError::Credential {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            source,
        })?;
        *value = Some(crate::core::digest::sha256_hex(creds.to_json().as_bytes()));
    }
    Ok(out)
}
