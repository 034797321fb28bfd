//! The seed scenario: 15 tools (basic, bearer and api-key auth), 3 peer gateways (real MCP
//! peers), 5 virtual servers, 12 prompts with argument schemas, 8 resources of different MIME
//! types, 6 roots — created through the gateway's REST API, with canary credentials.

use std::collections::BTreeMap;

use base64::Engine;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::Gateway;

/// Every plaintext secret planted by the seed starts with this, so tests can grep for leaks.
pub const CANARY: &str = "CANARY-";

pub const MIME_TYPES: [&str; 8] = [
    "text/plain",
    "text/markdown",
    "application/json",
    "text/html",
    "text/css",
    "application/xml",
    "text/javascript",
    "image/svg+xml",
];

/// What was planted: the expected decrypted headers per tool and gateway name.
#[derive(Debug, Default)]
pub struct Seeded {
    pub tool_headers: BTreeMap<String, Value>,
    pub gateway_headers: BTreeMap<String, Value>,
    pub tool_ids: BTreeMap<String, String>,
}

async fn each(gw: &Gateway, bodies: Vec<(String, Value)>) -> Vec<Value> {
    stream::iter(bodies)
        .map(|(path, body)| async move { gw.post(&path, body).await })
        .buffered(4)
        .collect()
        .await
}

pub async fn seed(gw: &Gateway) -> Seeded {
    let mut s = Seeded::default();
    let b64 =
        |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));

    // 3 peer gateways, one with each auth type.
    for (i, auth) in ["bearer", "basic", "authheaders"].iter().enumerate() {
        let name = format!("peer-{}", ["one", "two", "three"][i]);
        let url = gw.peer(&name);
        let mut body = json!({"name": name, "url": url, "transport": "STREAMABLEHTTP",
                              "description": format!("Peer {i}"), "tags": ["peers"]});
        let secret = format!("{CANARY}gw-{i}");
        let headers = match *auth {
            "bearer" => {
                body["auth_type"] = json!("bearer");
                body["auth_token"] = json!(secret);
                json!({"Authorization": format!("Bearer {secret}")})
            }
            "basic" => {
                body["auth_type"] = json!("basic");
                body["auth_username"] = json!("peeruser");
                body["auth_password"] = json!(secret);
                json!({"Authorization": format!("Basic {}", b64("peeruser", &secret))})
            }
            _ => {
                body["auth_type"] = json!("authheaders");
                body["auth_header_key"] = json!("X-Peer-Key");
                body["auth_header_value"] = json!(secret);
                json!({"X-Peer-Key": secret})
            }
        };
        gw.post("/v1/gateways", body).await;
        s.gateway_headers.insert(name, headers);
    }

    // 15 tools: 5 basic, 5 bearer, 5 api-key (custom header).
    let mut bodies = Vec::new();
    for i in 0..15 {
        let (kind, name) = match i / 5 {
            0 => ("basic", format!("crm-basic-{i}")),
            1 => ("bearer", format!("github-bearer-{i}")),
            _ => ("authheaders", format!("weather-apikey-{i}")),
        };
        let secret = format!("{CANARY}tool-{i}");
        let mut tool = json!({
            "name": name, "url": format!("https://api{i}.example.com/v1/op"),
            "integration_type": "REST", "request_type": if i % 2 == 0 { "GET" } else { "POST" },
            "description": format!("Tool number {i}"),
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            "tags": [if i < 5 { "crm" } else if i < 10 { "github" } else { "weather" }, "seed"],
            "auth_type": kind,
        });
        let headers = match kind {
            "basic" => {
                tool["auth_username"] = json!(format!("user{i}"));
                tool["auth_password"] = json!(secret);
                json!({"Authorization": format!("Basic {}", b64(&format!("user{i}"), &secret))})
            }
            "bearer" => {
                tool["auth_token"] = json!(secret);
                json!({"Authorization": format!("Bearer {secret}")})
            }
            _ => {
                tool["auth_headers"] = json!([{"key": "X-API-Key", "value": secret}, {"key": "X-Tenant", "value": "acme"}]);
                json!({"X-API-Key": secret, "X-Tenant": "acme"})
            }
        };
        s.tool_headers.insert(name, headers);
        bodies.push(("/v1/tools".to_string(), json!({"tool": tool})));
    }
    for t in each(gw, bodies).await {
        s.tool_ids.insert(
            t["name"].as_str().unwrap().into(),
            t["id"].as_str().unwrap().into(),
        );
    }

    // 12 prompts with argument schemas.
    let bodies = (0..12)
        .map(|i| {
            ("/v1/prompts".to_string(), json!({"prompt": {
                "name": format!("prompt-{i:02}"),
                "description": format!("Prompt {i}"),
                "template": format!("Write about {{{{ topic }}}} for {{{{ audience }}}} #{i}"),
                "arguments": [{"name": "topic", "description": "What to write about", "required": true},
                              {"name": "audience", "description": "Who reads it", "required": true}],
                "tags": ["writing"],
            }}))
        })
        .collect();
    let prompts = each(gw, bodies).await;

    // 8 resources of different MIME types.
    let bodies = MIME_TYPES
        .iter()
        .enumerate()
        .map(|(i, mime)| {
            (
                "/v1/resources".to_string(),
                json!({"resource": {
                    "name": format!("res-{i}"), "uri": format!("docs://seed/res-{i}"),
                    "description": format!("Resource {i}"), "mime_type": mime,
                    "content": format!("content of resource {i} ({mime})"), "tags": ["docs"],
                }}),
            )
        })
        .collect();
    let resources = each(gw, bodies).await;

    // 5 servers composing tools (plus resources, prompts and a federated tool).
    let peer_tools: Vec<Value> = gw
        .get("/v1/tools?limit=0")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    let federated = peer_tools
        .iter()
        .find(|t| t["name"] == "peer-one-echo")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .expect("the peer's echo tool was federated");
    let ids: Vec<&String> = s.tool_ids.values().collect();
    let bodies = (0..5)
        .map(|i| {
            let mut tools: Vec<String> = ids[i * 3..i * 3 + 3]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if i == 0 {
                tools.push(federated.clone());
            }
            (
                "/v1/servers".to_string(),
                json!({"server": {
                    "name": format!("server-{i}"), "description": format!("Server {i}"),
                    "associated_tools": tools,
                    "associated_resources": [resources[i]["id"]],
                    "associated_prompts": [prompts[i]["id"], prompts[i + 5]["id"]],
                    "tags": ["servers"],
                }}),
            )
        })
        .collect();
    each(gw, bodies).await;

    // 6 roots: file and https.
    for i in 0..3 {
        gw.post(
            "/v1/roots",
            json!({"uri": format!("file:///srv/data{i}"), "name": format!("data{i}")}),
        )
        .await;
        gw.post(
            "/v1/roots",
            json!({"uri": format!("https://git.example.com/repo{i}"), "name": format!("repo{i}")}),
        )
        .await;
    }
    s
}
