//! The live configuration as the gateway returns it (camelCase read models), and the reads
//! that fetch it: every list fully paginated, credentials through the selective export (the
//! only place the API returns them, encrypted), resource content one by one.

use std::collections::{BTreeMap, HashMap};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Action, Client, GatewayError, encode_component};
use crate::core::document::validate::slugify;
use crate::core::document::{PromptArgument, Tag, Visibility};
use crate::core::kind::Kind;

/// `limit=0` asks for every entity in one page (pages of N are capped at 500); a `nextCursor`
/// is still followed should the gateway ever cut the answer.
const PAGE: usize = 0;
/// Concurrent per-entity reads (resource content).
const READ_CONCURRENCY: usize = 8;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTool {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub original_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub request_type: Option<String>,
    #[serde(default)]
    pub integration_type: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub annotations: Option<Value>,
    #[serde(default)]
    pub jsonpath_filter: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub gateway_id: Option<String>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub auth: Option<LiveToolAuth>,
    /// Entity version: 1 on create, +1 on every update (credentials included).
    #[serde(default)]
    pub version: Option<i64>,
    /// Last update time (naive ISO); moves with every update.
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveToolAuth {
    #[serde(default)]
    pub auth_type: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveGateway {
    pub id: String,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub transport: Option<String>,
    #[serde(default)]
    pub capabilities: Option<Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub passthrough_headers: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub auth_type: Option<String>,
    /// Entity version: 1 on create, +1 on every update (credentials included).
    #[serde(default)]
    pub version: Option<i64>,
    /// Last update time (naive ISO); moves with every update.
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveServer {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub associated_tool_ids: Vec<String>,
    #[serde(default)]
    pub associated_resources: Vec<String>,
    #[serde(default)]
    pub associated_prompts: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePrompt {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub original_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub arguments: Vec<PromptArgument>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub gateway_id: Option<String>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveResource {
    pub id: String,
    pub uri: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub gateway_id: Option<String>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub team_id: Option<String>,
    /// Entity version: 1 on create, +1 on every update.
    #[serde(default)]
    pub version: Option<i64>,
    /// Last update time (naive ISO); moves with every update, content included.
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub extension_metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct LiveRoot {
    pub uri: String,
    #[serde(default)]
    pub name: Option<String>,
}

fn yes() -> bool {
    true
}

/// Everything a gateway holds, federated entities included.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    pub tools: Vec<LiveTool>,
    pub gateways: Vec<LiveGateway>,
    pub servers: Vec<LiveServer>,
    pub prompts: Vec<LivePrompt>,
    pub resources: Vec<LiveResource>,
    pub roots: Vec<LiveRoot>,
}

impl LiveState {
    /// Read all six kinds concurrently (inactive ones included).
    pub async fn fetch(client: &Client, kinds: &[Kind]) -> Result<LiveState, GatewayError> {
        let want = |k: Kind| kinds.contains(&k);
        let (tools, gateways, servers, prompts, resources, roots) = tokio::try_join!(
            maybe(want(Kind::Tool), list_all::<LiveTool>(client, Kind::Tool)),
            maybe(
                want(Kind::Gateway),
                list_all::<LiveGateway>(client, Kind::Gateway)
            ),
            maybe(
                want(Kind::Server),
                list_all::<LiveServer>(client, Kind::Server)
            ),
            maybe(
                want(Kind::Prompt),
                list_all::<LivePrompt>(client, Kind::Prompt)
            ),
            maybe(
                want(Kind::Resource),
                list_all::<LiveResource>(client, Kind::Resource)
            ),
            maybe(want(Kind::Root), list_roots(client)),
        )?;
        Ok(LiveState {
            tools,
            gateways,
            servers,
            prompts,
            resources,
            roots,
        })
    }
}

async fn maybe<T>(
    on: bool,
    fut: impl Future<Output = Result<Vec<T>, GatewayError>>,
) -> Result<Vec<T>, GatewayError> {
    if on { fut.await } else { Ok(Vec::new()) }
}

/// Every entity of a kind, following `nextCursor` so that nothing is cut at a page size.
pub async fn list_all<T: DeserializeOwned>(
    client: &Client,
    kind: Kind,
) -> Result<Vec<T>, GatewayError> {
    list_paged(client, kind, PAGE).await
}

/// Every entity of a kind, `page` at a time.
pub async fn list_paged<T: DeserializeOwned>(
    client: &Client,
    kind: Kind,
    page: usize,
) -> Result<Vec<T>, GatewayError> {
    let plural = kind.plural();
    let action = Action::new(format!("list {plural}"));
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path =
            format!("/v1/{plural}?include_pagination=true&include_inactive=true&limit={page}");
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&encode_component(c));
        }
        let page = client.get(&path, &action).await?;
        let (items, next) = match page {
            // Older gateways ignore include_pagination and answer a bare array.
            Value::Array(items) => (items, None),
            Value::Object(mut o) => (
                match o.remove(plural) {
                    Some(Value::Array(items)) => items,
                    _ => {
                        return Err(GatewayError::Protocol {
                            action: action.text,
                            reason: format!("no '{plural}' list in the page"),
                        });
                    }
                },
                o.remove("nextCursor")
                    .and_then(|c| c.as_str().map(str::to_string)),
            ),
            _ => {
                return Err(GatewayError::Protocol {
                    action: action.text,
                    reason: "a list page is neither an array nor an object".into(),
                });
            }
        };
        let n = items.len();
        for item in items {
            out.push(
                serde_json::from_value(item).map_err(|e| GatewayError::Protocol {
                    action: action.text.clone(),
                    reason: e.to_string(),
                })?,
            );
        }
        match next {
            Some(c) if n > 0 && cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

/// Roots are not paginated.
pub async fn list_roots(client: &Client) -> Result<Vec<LiveRoot>, GatewayError> {
    let action = Action::new("list roots");
    let v = client.get("/v1/roots", &action).await?;
    serde_json::from_value(v).map_err(|e| GatewayError::Protocol {
        action: action.text,
        reason: e.to_string(),
    })
}

/// Encrypted `auth_value`s (with the gateway's own key) for tools and gateways, by id. The
/// selective export is the only route that returns them; it answers in database order and
/// names tools by their original name, so names are compared in slug form and each batch
/// holds distinct names.
pub async fn stored_credentials(
    client: &Client,
    tools: &[(&str, &str)],
    gateways: &[(&str, &str)],
) -> Result<HashMap<(Kind, String), String>, GatewayError> {
    let mut out = HashMap::new();
    // Tools and gateways go in one request: batch i of each kind together.
    let (tb, gb) = (distinct_batches(tools), distinct_batches(gateways));
    for i in 0..tb.len().max(gb.len()) {
        let empty = Vec::new();
        let parts = [
            (Kind::Tool, tb.get(i).unwrap_or(&empty)),
            (Kind::Gateway, gb.get(i).unwrap_or(&empty)),
        ];
        let mut body = serde_json::Map::new();
        for (kind, batch) in &parts {
            if !batch.is_empty() {
                let ids: Vec<&str> = batch.iter().map(|(id, _)| *id).collect();
                body.insert(kind.plural().to_string(), json!(ids));
            }
        }
        let action = Action::query("read stored credentials");
        let doc = client
            .post(
                "/v1/export/selective?include_dependencies=false",
                &Value::Object(body),
                &action,
            )
            .await?;
        for (kind, batch) in parts {
            let by_name: HashMap<String, &str> = batch
                .iter()
                .map(|(id, name)| (slugify(name), *id))
                .collect();
            let items = doc
                .pointer(&format!("/entities/{}", kind.plural()))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                let value = match item.get("auth_value") {
                    Some(Value::String(s)) if !s.is_empty() => s.clone(),
                    _ => continue,
                };
                if let Some(id) = by_name.get(&slugify(name)) {
                    out.insert((kind, id.to_string()), value);
                }
            }
        }
    }
    Ok(out)
}

/// Split (id, name) pairs into batches in which every name (in slug form) occurs once.
fn distinct_batches<'a>(items: &[(&'a str, &'a str)]) -> Vec<Vec<(&'a str, &'a str)>> {
    let mut batches: Vec<Vec<(&str, &str)>> = Vec::new();
    for &(id, name) in items {
        match batches
            .iter_mut()
            .find(|b| b.iter().all(|(_, n)| slugify(n) != slugify(name)))
        {
            Some(b) => b.push((id, name)),
            None => batches.push(vec![(id, name)]),
        }
    }
    batches
}

/// A resource's text content.
pub async fn resource_content(
    client: &Client,
    id: &str,
    uri: &str,
) -> Result<Option<String>, GatewayError> {
    let action = Action::entity("read content of", Kind::Resource, uri);
    let v = client
        .get(&format!("/v1/resources/{}", encode_component(id)), &action)
        .await?;
    Ok(v.get("text")
        .and_then(Value::as_str)
        .or_else(|| v.get("blob").and_then(Value::as_str))
        .map(str::to_string))
}

/// Contents of many resources, `READ_CONCURRENCY` at a time, keyed by id.
pub async fn resource_contents(
    client: &Client,
    resources: &[(&str, &str)],
) -> Result<HashMap<String, Option<String>>, GatewayError> {
    // By index: a closure taking a reference and returning an async block is not provably
    // `Send` (rustc #110338), and the daemon runs this on spawned tasks.
    stream::iter((0..resources.len()).map(|i| {
        let (id, uri) = resources[i];
        async move {
            resource_content(client, id, uri)
                .await
                .map(|c| (id.to_string(), c))
        }
    }))
    .buffer_unordered(READ_CONCURRENCY)
    .try_collect()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_names_distinct() {
        let b = distinct_batches(&[("1", "a"), ("2", "b"), ("3", "a"), ("4", "a")]);
        assert_eq!(
            b,
            vec![
                vec![("1", "a"), ("2", "b")],
                vec![("3", "a")],
                vec![("4", "a")]
            ]
        );
    }

    #[test]
    fn read_models_accept_what_the_gateway_sends() {
        let t: LiveTool = serde_json::from_value(json!({
            "id": "6c5b", "name": "weather-current", "originalName": "Weather_Current",
            "url": "https://api.example.com/w", "requestType": "GET", "integrationType": "REST",
            "headers": null, "tags": [{"id": "public-api", "label": "Public API"}],
            "enabled": true, "gatewayId": null, "visibility": "public",
            "auth": {"authType": "bearer", "authValue": null, "token": "*****"}
        }))
        .unwrap();
        assert_eq!(t.tags, vec![Tag::from("Public API")]);
        assert_eq!(t.auth.unwrap().auth_type.as_deref(), Some("bearer"));
        let r: LiveResource = serde_json::from_value(json!({
            "id": "1a", "uri": "docs://readme", "name": "readme", "mimeType": "text/markdown",
            "tags": ["Docs"], "enabled": true
        }))
        .unwrap();
        assert_eq!(r.mime_type.as_deref(), Some("text/markdown"));
    }
}
