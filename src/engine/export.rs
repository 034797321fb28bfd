//! `export`: read the live gateway into a document. Lossless where ContextForge's own export
//! is not: tool credentials (read encrypted through the selective export, verified with the
//! gateway's key and re-encrypted with the document's), resource content, server links to
//! tools, resources and prompts. Federated entities are left out. Deterministic output.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::core::document::{
    self, Document, Entities, Gateway, Metadata, Prompt, Resource, Root, Server, Tool,
};
use crate::core::kind::Kind;
use crate::core::secrets::{CryptoError, Secret};
use crate::core::select::{self, Selection};
use crate::engine::content_cache::ContentCache;
use crate::gateway::GatewayError;
use crate::gateway::live::LiveState;

/// What export needs besides the client.
pub struct ExportOptions {
    pub selection: Selection,
    /// The gateway's `AUTH_ENCRYPTION_SECRET`: decrypts the stored credentials.
    pub gateway_secret: Secret,
    /// Encrypt the document's credentials with this key instead (default: the gateway's).
    pub document_secret: Option<Secret>,
    /// Written as `exported_by`.
    pub exported_by: Option<String>,
    /// Timestamp for `exported_at` (RFC 3339).
    pub now: String,
    /// Resource content already read at the version the gateway still reports.
    pub cache: Option<Arc<ContentCache>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("the stored credential of {kind} '{name}' {source}")]
    Credential {
        kind: Kind,
        name: String,
        #[source]
        source: CryptoError,
    },
    #[error("the selection (--include or the entities named) matched nothing on the gateway")]
    NothingIncluded,
}

impl crate::core::error::Classify for ExportError {
    fn class(&self) -> crate::core::error::ErrorClass {
        match self {
            ExportError::Gateway(g) => g.class(),
            ExportError::Credential { .. } | ExportError::NothingIncluded => {
                crate::core::error::ErrorClass::Invalid
            }
        }
    }
}

/// The document and how much was left out.
pub struct Exported {
    pub document: Document,
    pub skipped: usize,
}

/// Export the gateway's configuration.
pub async fn export<G: crate::gateway::Gateway>(
    client: &G,
    opts: &ExportOptions,
) -> Result<Exported, ExportError> {
    let live = client.live(&Kind::ALL).await?;
    let (base, ids) = from_live(&live);
    let selected = selected(&base, &opts.selection)?;
    let mut doc = selected.document;
    fill_credentials(client, &mut doc.entities, &ids, &live, opts).await?;
    fill_content(
        client,
        &mut doc.entities,
        &ids,
        &live,
        opts.cache.as_deref(),
    )
    .await?;
    doc.entities.sort();
    doc.version = document::DOCUMENT_VERSION.to_string();
    doc.exported_at = Some(opts.now.clone());
    doc.exported_by = opts.exported_by.clone();
    doc.source_gateway = Some(client.url().to_string());
    doc.encryption_method = Some(document::ENCRYPTION_METHOD.to_string());
    doc.metadata = Some(metadata(&doc.entities, &opts.selection));
    Ok(Exported {
        document: doc,
        skipped: selected.skipped,
    })
}

/// What `selection` chooses of the live gateway, without reading a credential or a
/// resource's content: the entities it would export and the dependencies it adds (a
/// preview of [`export`], the same selection code).
pub async fn select_live<G: crate::gateway::Gateway>(
    client: &G,
    selection: &Selection,
) -> Result<select::Selected, ExportError> {
    let live = client.live(&Kind::ALL).await?;
    selected(&from_live(&live).0, selection)
}

/// `selection` applied to `base`; an include or a pick that chooses nothing is an error.
fn selected(base: &Document, selection: &Selection) -> Result<select::Selected, ExportError> {
    let selected = select::select(base, selection);
    let named = selection.include.is_some() || selection.picked.is_some();
    if named && selected.document.entities.total() == 0 {
        return Err(ExportError::NothingIncluded);
    }
    Ok(selected)
}

/// Live ids of the document's entities, by (kind, key).
pub type Ids = HashMap<(Kind, String), String>;

/// Convert the live state into a document (no credentials, no content yet). Federated
/// tools, prompts and resources (those with a `gatewayId`) are left out.
pub fn from_live(live: &LiveState) -> (Document, Ids) {
    let mut ids = Ids::new();
    let tool_names: HashMap<&str, &str> = live
        .tools
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str()))
        .collect();
    let prompt_names: HashMap<&str, &str> = live
        .prompts
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    let resource_uris: HashMap<&str, &str> = live
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r.uri.as_str()))
        .collect();
    let names = |refs: &[String], map: &HashMap<&str, &str>| -> Vec<String> {
        let mut v: Vec<String> = refs
            .iter()
            .map(|id| {
                map.get(id.as_str())
                    .map_or_else(|| id.clone(), |n| n.to_string())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };

    let mut e = Entities::default();
    for t in live.tools.iter().filter(|t| t.gateway_id.is_none()) {
        ids.insert((Kind::Tool, t.name.clone()), t.id.clone());
        e.tools.push(Tool {
            name: t.name.clone(),
            display_name: t.display_name.clone(),
            url: t.url.clone().unwrap_or_default(),
            integration_type: t.integration_type.clone().unwrap_or_else(|| "REST".into()),
            request_type: t.request_type.clone(),
            description: t.description.clone(),
            headers: t.headers.as_ref().filter(|h| !h.is_empty()).map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            }),
            input_schema: t.input_schema.clone().filter(|v| !v.is_null()),
            output_schema: t.output_schema.clone().filter(|v| !v.is_null()),
            annotations: t.annotations.clone().filter(non_empty),
            jsonpath_filter: t.jsonpath_filter.clone().filter(|s| !s.is_empty()),
            tags: t.tags.clone(),
            visibility: t.visibility,
            is_active: t.enabled,
            auth_type: t
                .auth
                .as_ref()
                .and_then(|a| a.auth_type.clone())
                .filter(|s| !s.is_empty()),
            auth_value: None,
            gateway_id: None,
            gateway_name: None,
        });
    }
    for g in &live.gateways {
        ids.insert((Kind::Gateway, g.name.clone()), g.id.clone());
        e.gateways.push(Gateway {
            name: g.name.clone(),
            url: g.url.clone(),
            description: g.description.clone(),
            transport: g.transport.clone(),
            capabilities: g.capabilities.clone().filter(|v| !v.is_null()),
            tags: g.tags.clone(),
            passthrough_headers: g.passthrough_headers.clone().filter(|p| !p.is_empty()),
            visibility: g.visibility,
            is_active: g.enabled,
            auth_type: g.auth_type.clone().filter(|s| !s.is_empty()),
            auth_value: None,
        });
    }
    for s in &live.servers {
        ids.insert((Kind::Server, s.name.clone()), s.id.clone());
        e.servers.push(Server {
            name: s.name.clone(),
            id: Some(s.id.clone()),
            description: s.description.clone(),
            icon: s.icon.clone(),
            tool_ids: names(&s.associated_tool_ids, &tool_names),
            resource_uris: names(&s.associated_resources, &resource_uris),
            prompt_names: names(&s.associated_prompts, &prompt_names),
            tags: s.tags.clone(),
            visibility: s.visibility,
            is_active: s.enabled,
        });
    }
    for p in live.prompts.iter().filter(|p| p.gateway_id.is_none()) {
        ids.insert((Kind::Prompt, p.name.clone()), p.id.clone());
        e.prompts.push(Prompt {
            name: p.name.clone(),
            description: p.description.clone(),
            template: p.template.clone(),
            input_schema: (!p.arguments.is_empty())
                .then(|| document::arguments_to_schema(&p.arguments)),
            arguments: None,
            tags: p.tags.clone(),
            visibility: p.visibility,
            is_active: p.enabled,
            gateway_id: None,
            gateway_name: None,
        });
    }
    for r in live.resources.iter().filter(|r| r.gateway_id.is_none()) {
        ids.insert((Kind::Resource, r.uri.clone()), r.id.clone());
        e.resources.push(Resource {
            name: r.name.clone(),
            uri: r.uri.clone(),
            description: r.description.clone(),
            mime_type: r.mime_type.clone(),
            content: None,
            tags: r.tags.clone(),
            visibility: r.visibility,
            is_active: r.enabled,
            gateway_id: None,
            gateway_name: None,
        });
    }
    for r in &live.roots {
        e.roots.push(Root {
            uri: r.uri.clone(),
            name: r.name.clone(),
        });
    }
    let doc = Document {
        version: document::DOCUMENT_VERSION.to_string(),
        entities: e,
        ..Default::default()
    };
    (doc, ids)
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(o) => !o.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

async fn fill_credentials<G: crate::gateway::Gateway>(
    client: &G,
    e: &mut Entities,
    ids: &Ids,
    live: &LiveState,
    opts: &ExportOptions,
) -> Result<(), ExportError> {
    let id_of = |kind: Kind, key: &str| ids.get(&(kind, key.to_string())).map(String::as_str);
    let tools: Vec<(&str, &str)> = e
        .tools
        .iter()
        .filter(|t| t.auth_type.is_some())
        .filter_map(|t| Some((id_of(Kind::Tool, &t.name)?, t.name.as_str())))
        .collect();
    let gateways: Vec<(&str, &str)> = e
        .gateways
        .iter()
        .filter(|g| g.auth_type.is_some())
        .filter_map(|g| Some((id_of(Kind::Gateway, &g.name)?, g.name.as_str())))
        .collect();
    if tools.is_empty() && gateways.is_empty() {
        return Ok(());
    }
    // Read (or remembered, at the version the gateway reports) as the gateway stores them.
    let stored = crate::engine::content_cache::stored_credentials(
        client,
        live,
        opts.cache.as_deref(),
        &tools,
        &gateways,
        |v| opts.gateway_secret.decrypt(v).is_ok(),
    )
    .await?;
    let out = opts
        .document_secret
        .as_ref()
        .unwrap_or(&opts.gateway_secret);
    let reencrypt = |kind: Kind, name: &str| -> Result<Option<String>, ExportError> {
        let Some(id) = id_of(kind, name) else {
            return Ok(None);
        };
        let Some(value) = stored.get(&(kind, id.to_string())) else {
            return Ok(None);
        };
        let creds =
            opts.gateway_secret
                .decrypt(value)
                .map_err(|source| ExportError::Credential {
                    kind,
                    name: name.to_string(),
                    source,
                })?;
        Ok((!creds.is_empty()).then(|| out.encrypt(&creds)))
    };
    for t in e.tools.iter_mut().filter(|t| t.auth_type.is_some()) {
        t.auth_value = reencrypt(Kind::Tool, &t.name)?;
    }
    for g in e.gateways.iter_mut().filter(|g| g.auth_type.is_some()) {
        g.auth_value = reencrypt(Kind::Gateway, &g.name)?;
    }
    Ok(())
}

async fn fill_content<G: crate::gateway::Gateway>(
    client: &G,
    e: &mut Entities,
    ids: &Ids,
    live: &LiveState,
    cache: Option<&ContentCache>,
) -> Result<(), ExportError> {
    let gateway = client.url();
    let seen: HashMap<&str, (Option<i64>, Option<&str>)> = live
        .resources
        .iter()
        .map(|r| (r.id.as_str(), (r.version, r.updated_at.as_deref())))
        .collect();
    let mut by_uri: HashMap<String, Option<String>> = HashMap::new();
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    for r in &e.resources {
        let Some(id) = ids.get(&(Kind::Resource, r.uri.clone())) else {
            continue;
        };
        let (version, updated_at) = seen.get(id.as_str()).copied().unwrap_or_default();
        match cache.and_then(|c| c.get(gateway, Kind::Resource, id, version, updated_at)) {
            Some(content) => {
                by_uri.insert(r.uri.clone(), Some(content));
            }
            None => wanted.push((id.as_str(), r.uri.as_str())),
        }
    }
    let contents = client.resource_contents(&wanted).await?;
    for (id, uri) in &wanted {
        let content = contents.get(*id).cloned().flatten();
        if let (Some(c), Some(text)) = (cache, &content) {
            let (version, updated_at) = seen.get(id).copied().unwrap_or_default();
            c.put(gateway, Kind::Resource, id, version, updated_at, text);
        }
        by_uri.insert(uri.to_string(), content);
    }
    if let Some(c) = cache {
        let local: Vec<&str> = seen.keys().copied().collect();
        c.retain_live(gateway, Kind::Resource, &local);
        if let Err(e) = c.save() {
            tracing::warn!("{e}");
        }
    }
    for r in &mut e.resources {
        r.content = by_uri.get(&r.uri).cloned().flatten();
    }
    Ok(())
}

/// Counts, dependency links and options.
pub fn metadata(e: &Entities, sel: &Selection) -> Metadata {
    let mut deps = document::Dependencies::default();
    for s in &e.servers {
        deps.servers_to_tools
            .insert(s.name.clone(), s.tool_ids.clone());
        deps.servers_to_resources
            .insert(s.name.clone(), s.resource_uris.clone());
        deps.servers_to_prompts
            .insert(s.name.clone(), s.prompt_names.clone());
    }
    let entity_counts: BTreeMap<String, usize> = Kind::DISPLAY
        .iter()
        .map(|k| (k.plural().to_string(), e.count(*k)))
        .collect();
    let kinds = |v: &[Kind]| v.iter().map(|k| k.plural()).collect::<Vec<_>>();
    Metadata {
        entity_counts,
        dependencies: deps,
        export_options: Some(json!({
            "exporter": concat!("mcp-gitops ", env!("CARGO_PKG_VERSION")),
            "include_inactive": sel.include_inactive,
            "include_dependencies": sel.dependencies,
            "selected_types": sel.types.as_deref().map(kinds),
            "excluded_types": kinds(&sel.exclude_types),
            "filter_tags": sel.tags,
        })),
    }
}
