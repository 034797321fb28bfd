//! What a gateway says about itself, and a sample of its stored credentials: enough to check
//! that a key is the gateway's own without reading every entity.

use serde_json::Value;

use super::live::{LiveGateway, LiveTool, stored_credentials};
use super::{Action, Client, GatewayError};
use crate::core::kind::Kind;

/// How many tools (then peer gateways) of the first page are looked at for a credential.
const SAMPLE: usize = 50;

/// The gateway's version (`GET /version`, `app.version`), if it says one.
pub async fn version(client: &Client) -> Result<Option<String>, GatewayError> {
    let v = client
        .get("/version", &Action::query("read version"))
        .await?;
    Ok(v.pointer("/app/version")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// One stored credential (encrypted with the gateway's key) of a tool or, failing that, of a
/// peer gateway among the first [`SAMPLE`] of each: `(kind, name, auth_value)`; `None` when
/// none of them has one.
pub async fn sample_credential(
    client: &Client,
) -> Result<Option<(Kind, String, String)>, GatewayError> {
    let page = |kind: Kind| format!("/v1/{}?include_inactive=true&limit={SAMPLE}", kind.plural());
    fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, GatewayError> {
        serde_json::from_value(v).map_err(|e| GatewayError::Protocol {
            action: what.to_string(),
            reason: e.to_string(),
        })
    }
    let with_auth = |t: &Option<String>| t.as_deref().is_some_and(|t| !t.is_empty());
    let tools: Vec<LiveTool> = parse(
        "list tools",
        client
            .get(&page(Kind::Tool), &Action::new("list tools"))
            .await?,
    )?;
    let candidate = match tools
        .iter()
        .find(|t| t.auth.as_ref().is_some_and(|a| with_auth(&a.auth_type)))
    {
        Some(t) => Some((Kind::Tool, t.id.clone(), t.name.clone())),
        None => {
            let gws: Vec<LiveGateway> = parse(
                "list gateways",
                client
                    .get(&page(Kind::Gateway), &Action::new("list gateways"))
                    .await?,
            )?;
            gws.iter()
                .find(|g| with_auth(&g.auth_type))
                .map(|g| (Kind::Gateway, g.id.clone(), g.name.clone()))
        }
    };
    let Some((kind, id, name)) = candidate else {
        return Ok(None);
    };
    let one = [(id.as_str(), name.as_str())];
    let found = match kind {
        Kind::Tool => stored_credentials(client, &one, &[]).await?,
        _ => stored_credentials(client, &[], &one).await?,
    };
    Ok(found.get(&(kind, id)).map(|v| (kind, name, v.clone())))
}
