//! Read what the target gateway holds, in the form the diff compares: the live document
//! (federated entities left out), decrypted credentials for the entities the desired document
//! manages, resource content where the desired document states it, and every live id.

use std::collections::{HashMap, HashSet};

use crate::document::validate::identity;
use crate::document::{Document, Entity};
use crate::export;
use crate::gateway::live::{self, LiveState};
use crate::gateway::{Client, GatewayError};
use crate::kind::Kind;
use crate::plan::CredentialMap;
use crate::secrets::Secret;

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
pub async fn observe(
    client: &Client,
    desired: &Document,
    gateway_secret: Option<&Secret>,
) -> Result<Observed, GatewayError> {
    let state = LiveState::fetch(client, &Kind::ALL).await?;
    let (mut document, _) = export::from_live(&state);
    let ids = live_ids(&state);
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
        let stored =
            live::stored_credentials(client, &refs(&want_tools), &refs(&want_gateways)).await?;
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

    // Resource content, only where the desired document states content to compare.
    let live_uris: HashSet<&str> = document
        .entities
        .resources
        .iter()
        .map(|r| r.key())
        .collect();
    let wanted: Vec<(String, String)> = desired
        .entities
        .resources
        .iter()
        .filter(|r| r.content.is_some() && live_uris.contains(r.uri.as_str()))
        .filter_map(|r| Some((id(Kind::Resource, &r.uri)?, r.uri.clone())))
        .collect();
    if !wanted.is_empty() {
        let refs: Vec<(&str, &str)> = wanted
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let contents = live::resource_contents(client, &refs).await?;
        for r in &mut document.entities.resources {
            if let Some(i) = id(Kind::Resource, &r.uri) {
                r.content = contents.get(&i).cloned().flatten();
            }
        }
    }
    Ok(Observed {
        document,
        credentials,
        unreadable,
        ids,
    })
}
