//! Read what the target gateway holds, in the form the diff compares: the live document
//! (federated entities left out), decrypted credentials for the entities the desired document
//! manages, resource content where the desired document states it, and every live id.

use std::collections::{HashMap, HashSet};

use crate::core::diff::CredentialMap;
use crate::core::document::validate::identity;
use crate::core::document::{Document, Entity};
use crate::core::kind::Kind;
use crate::core::secrets::Secret;
use crate::engine::content_cache::ContentCache;
use crate::engine::export;
use crate::gateway::live::LiveState;
use crate::gateway::{Gateway, GatewayError};

/// The target gateway as observed before planning.
pub struct Observed {
    /// Non-federated entities in document form.
    pub document: Document,
    /// Decrypted stored credentials, by (kind, live key).
    pub credentials: CredentialMap,
    /// Stored credentials the gateway secret could not decrypt.
    pub unreadable: Vec<(Kind, String)>,
    /// Live ids by (kind, identity), federated tools, prompts and resources included.
    pub ids: HashMap<(Kind, String), String>,
    /// Version and extension metadata of local resources, by URI identity (for the content
    /// marker).
    pub resources: HashMap<String, ResourceMeta>,
}

/// What the content marker needs of a live resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceMeta {
    pub version: Option<i64>,
    pub updated_at: Option<String>,
    pub extension_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ResourceMeta {
    /// The live content is known to hash to `sha256` without reading it: the marker was
    /// written at the version the resource still has.
    pub fn vouches_for(&self, sha256: &str) -> bool {
        let Some(m) = self
            .extension_metadata
            .as_ref()
            .and_then(|e| e.get(crate::gateway::body::MARKER_KEY))
        else {
            return false;
        };
        m.get("content_sha256").and_then(|v| v.as_str()) == Some(sha256)
            && m.get("version").and_then(|v| v.as_i64()).is_some()
            && m.get("version").and_then(|v| v.as_i64()) == self.version
    }
}

impl Observed {
    /// Everything on the gateway by (kind, identity), for reference checks.
    pub fn identities(&self) -> HashSet<(Kind, String)> {
        self.ids.keys().cloned().collect()
    }

    pub fn id(&self, kind: Kind, key: &str) -> Option<&str> {
        self.ids
            .get(&(kind, identity(kind, key)))
            .map(String::as_str)
    }

    pub fn exists(&self, kind: Kind, key: &str) -> bool {
        self.ids.contains_key(&(kind, identity(kind, key)))
    }
}

/// Ids of a live state by (kind, identity).
pub fn live_ids(state: &LiveState) -> HashMap<(Kind, String), String> {
    let mut ids = HashMap::new();
    let mut add = |kind: Kind, key: &str, id: &str| {
        ids.entry((kind, identity(kind, key)))
            .or_insert_with(|| id.to_string());
    };
    // Local entities first, so that a federated namesake never shadows a local one.
    for t in state.tools.iter().filter(|t| t.gateway_id.is_none()) {
        add(Kind::Tool, &t.name, &t.id);
    }
    for t in &state.tools {
        add(Kind::Tool, &t.name, &t.id);
    }
    for g in &state.gateways {
        add(Kind::Gateway, &g.name, &g.id);
    }
    for s in &state.servers {
        add(Kind::Server, &s.name, &s.id);
    }
    for p in state.prompts.iter().filter(|p| p.gateway_id.is_none()) {
        add(Kind::Prompt, &p.name, &p.id);
    }
    for p in &state.prompts {
        add(Kind::Prompt, &p.name, &p.id);
    }
    for r in state.resources.iter().filter(|r| r.gateway_id.is_none()) {
        add(Kind::Resource, &r.uri, &r.id);
    }
    for r in &state.resources {
        add(Kind::Resource, &r.uri, &r.id);
    }
    for r in &state.roots {
        add(Kind::Root, &r.uri, &r.uri);
    }
    ids
}

/// Observe the gateway for `desired`. `gateway_secret` decrypts stored credentials; it is
/// only needed when the desired document manages credentials of entities that exist.
/// `cache` holds content read before, used while the gateway reports the same version.
pub async fn observe<G: Gateway>(
    client: &G,
    desired: &Document,
    gateway_secret: Option<&Secret>,
    cache: Option<&ContentCache>,
) -> Result<Observed, GatewayError> {
    let state = client.live(&Kind::ALL).await?;
    let (mut document, _) = export::from_live(&state);
    let ids = live_ids(&state);
    let resources: HashMap<String, ResourceMeta> = state
        .resources
        .iter()
        .filter(|r| r.gateway_id.is_none())
        .map(|r| {
            (
                identity(Kind::Resource, &r.uri),
                ResourceMeta {
                    version: r.version,
                    updated_at: r.updated_at.clone(),
                    extension_metadata: r.extension_metadata.clone(),
                },
            )
        })
        .collect();
    let id = |kind: Kind, key: &str| ids.get(&(kind, identity(kind, key))).cloned();

    // Credentials, only for entities whose credentials the desired document manages.
    let managed_set: HashSet<(Kind, String)> = desired
        .entities
        .tools
        .iter()
        .filter(|t| t.auth_value.is_some())
        .map(|t| (Kind::Tool, identity(Kind::Tool, &t.name)))
        .chain(
            desired
                .entities
                .gateways
                .iter()
                .filter(|g| g.auth_value.is_some())
                .map(|g| (Kind::Gateway, identity(Kind::Gateway, &g.name))),
        )
        .collect();
    let managed = |kind: Kind, key: &str| managed_set.contains(&(kind, identity(kind, key)));
    let want_tools: Vec<(String, String)> = document
        .entities
        .tools
        .iter()
        .filter(|t| t.auth_type.is_some() && managed(Kind::Tool, &t.name))
        .filter_map(|t| Some((id(Kind::Tool, &t.name)?, t.name.clone())))
        .collect();
    let want_gateways: Vec<(String, String)> = document
        .entities
        .gateways
        .iter()
        .filter(|g| g.auth_type.is_some() && managed(Kind::Gateway, &g.name))
        .filter_map(|g| Some((id(Kind::Gateway, &g.name)?, g.name.clone())))
        .collect();
    let mut credentials = CredentialMap::new();
    let mut unreadable = Vec::new();
    if !(want_tools.is_empty() && want_gateways.is_empty()) {
        fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
            v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
        }
        let stored = crate::engine::content_cache::stored_credentials(
            client,
            &state,
            cache,
            &refs(&want_tools),
            &refs(&want_gateways),
            |v| gateway_secret.is_some_and(|s| s.decrypt(v).is_ok()),
        )
        .await?;
        for (kind, list) in [(Kind::Tool, &want_tools), (Kind::Gateway, &want_gateways)] {
            for (id, name) in list {
                let Some(value) = stored.get(&(kind, id.clone())) else {
                    continue;
                };
                match gateway_secret.map(|s| s.decrypt(value)) {
                    Some(Ok(c)) => {
                        credentials.insert((kind, name.clone()), c);
                    }
                    _ => unreadable.push((kind, name.clone())),
                }
            }
        }
    }

    // Resource content, only where the desired document states content to compare, and not
    // where the content marker or the content cache already vouches for it.
    let gateway = client.url();
    let live_uris: HashSet<&str> = document
        .entities
        .resources
        .iter()
        .map(|r| r.key())
        .collect();
    let mut known: HashMap<String, String> = HashMap::new();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for r in &desired.entities.resources {
        let (Some(content), true) = (&r.content, live_uris.contains(r.uri.as_str())) else {
            continue;
        };
        let Some(rid) = id(Kind::Resource, &r.uri) else {
            continue;
        };
        let meta = resources.get(&identity(Kind::Resource, &r.uri));
        if meta.is_some_and(|m| m.vouches_for(&crate::gateway::body::content_sha256(content))) {
            known.insert(rid, content.clone());
        } else if let Some(c) = meta.and_then(|m| {
            cache?.get(
                gateway,
                Kind::Resource,
                &rid,
                m.version,
                m.updated_at.as_deref(),
            )
        }) {
            known.insert(rid, c);
        } else {
            wanted.push((rid, r.uri.clone()));
        }
    }
    for r in &mut document.entities.resources {
        if let Some(c) = id(Kind::Resource, &r.uri).and_then(|i| known.get(&i)) {
            r.content = Some(c.clone());
        }
    }
    if !wanted.is_empty() {
        let refs: Vec<(&str, &str)> = wanted
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let contents = client.resource_contents(&refs).await?;
        if let Some(cache) = cache {
            for (id, uri) in &refs {
                let (Some(Some(text)), Some(m)) = (
                    contents.get(*id),
                    resources.get(&identity(Kind::Resource, uri)),
                ) else {
                    continue;
                };
                cache.put(
                    gateway,
                    Kind::Resource,
                    id,
                    m.version,
                    m.updated_at.as_deref(),
                    text,
                );
            }
            if let Err(e) = cache.save() {
                tracing::warn!("{e}");
            }
        }
        for r in &mut document.entities.resources {
            if let Some(c) = id(Kind::Resource, &r.uri).and_then(|i| contents.get(&i)) {
                r.content = c.clone();
            }
        }
    }
    Ok(Observed {
        document,
        credentials,
        unreadable,
        ids,
        resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::body::{content_marker, content_sha256};

    #[test]
    fn the_marker_vouches_only_at_its_version_and_hash() {
        let ext = |v: i64, c: &str| match content_marker(c, v, None) {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        };
        let meta = |version: i64, ext| ResourceMeta {
            version: Some(version),
            extension_metadata: ext,
            ..ResourceMeta::default()
        };
        let h = content_sha256("hello");
        assert!(meta(3, ext(3, "hello")).vouches_for(&h));
        // Written since (by hand, or any update that did not keep the marker in step).
        assert!(!meta(4, ext(3, "hello")).vouches_for(&h));
        // Other content wanted.
        assert!(!meta(3, ext(3, "hello")).vouches_for(&content_sha256("bye")));
        assert!(!meta(1, None).vouches_for(&h));
        // Other keys of extension_metadata are kept.
        let mut other = serde_json::Map::new();
        other.insert(
            "io.modelcontextprotocol/ui".into(),
            serde_json::json!({"csp": {}}),
        );
        let merged = content_marker("x", 2, Some(&other));
        assert!(merged.get("io.modelcontextprotocol/ui").is_some());
        assert_eq!(merged["mcp-gitops"]["version"], 2);
    }
}
