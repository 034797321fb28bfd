//! The typed operations the engine needs of a gateway, so that it runs the same against the
//! real one ([`Client`], REST) and the in-memory [`super::fake::FakeGateway`]. Bodies are the
//! ones `body` builds; paths and answers stay here.

use std::collections::HashMap;

use serde_json::Value;

use super::live::{self, LiveState};
use super::{Action, Client, GatewayError, body};
use crate::core::kind::Kind;

/// What the engine does with a gateway. Every future is `Send`: the daemon runs the engine on
/// spawned tasks.
pub trait Gateway: Send + Sync {
    /// The gateway's base URL (for `source_gateway`).
    fn url(&self) -> &str;

    /// Every entity of these kinds, federated and inactive ones included.
    fn live(&self, kinds: &[Kind]) -> impl Future<Output = Result<LiveState, GatewayError>> + Send;

    /// Encrypted stored credentials by (kind, id), of tools and gateways given as (id, name).
    fn stored_credentials(
        &self,
        tools: &[(&str, &str)],
        gateways: &[(&str, &str)],
    ) -> impl Future<Output = Result<HashMap<(Kind, String), String>, GatewayError>> + Send;

    /// Content of resources given as (id, uri), by id.
    fn resource_contents(
        &self,
        resources: &[(&str, &str)],
    ) -> impl Future<Output = Result<HashMap<String, Option<String>>, GatewayError>> + Send;

    /// The id of the token user's personal team.
    fn personal_team(&self) -> impl Future<Output = Result<Option<String>, GatewayError>> + Send;

    /// Create an entity of `kind` named `name` from a [`body::create`] body; its new id.
    fn create(
        &self,
        kind: Kind,
        name: &str,
        body: &Value,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// Update entity `id` with a (partial) [`body::update`] body.
    fn update(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
        body: &Value,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;

    /// Activate or deactivate entity `id`.
    fn set_active(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;

    /// Delete entity `id`.
    fn delete(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;
}

impl Gateway for Client {
    fn url(&self) -> &str {
        Client::url(self)
    }

    async fn live(&self, kinds: &[Kind]) -> Result<LiveState, GatewayError> {
        LiveState::fetch(self, kinds).await
    }

    async fn stored_credentials(
        &self,
        tools: &[(&str, &str)],
        gateways: &[(&str, &str)],
    ) -> Result<HashMap<(Kind, String), String>, GatewayError> {
        live::stored_credentials(self, tools, gateways).await
    }

    async fn resource_contents(
        &self,
        resources: &[(&str, &str)],
    ) -> Result<HashMap<String, Option<String>>, GatewayError> {
        live::resource_contents(self, resources).await
    }

    async fn personal_team(&self) -> Result<Option<String>, GatewayError> {
        let v = self
            .get(
                "/v1/teams/?limit=100",
                &Action::new("read the user's teams"),
            )
            .await?;
        let teams = match &v {
            Value::Array(a) => a.clone(),
            Value::Object(o) => o
                .get("teams")
                .or_else(|| o.get("items"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(teams
            .iter()
            .find(|t| {
                t.get("is_personal")
                    .or_else(|| t.get("isPersonal"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
            .and_then(|t| t.get("id").and_then(Value::as_str))
            .map(str::to_string))
    }

    async fn create(&self, kind: Kind, name: &str, body: &Value) -> Result<String, GatewayError> {
        let action = Action::entity("create", kind, name);
        let resp = self
            .post(&format!("/v1/{}", kind.plural()), body, &action)
            .await?;
        match kind {
            Kind::Root => Ok(name.to_string()),
            _ => resp
                .get("id")
                .or_else(|| resp.pointer(&format!("/{}/id", kind.singular())))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| GatewayError::Protocol {
                    action: action.text,
                    reason: "the gateway's answer carries no id".into(),
                }),
        }
    }

    async fn update(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
        body: &Value,
    ) -> Result<(), GatewayError> {
        let action = Action::entity("update", kind, name);
        self.put(&body::item_path(kind, id), body, &action)
            .await
            .map(drop)
    }

    async fn set_active(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
        on: bool,
    ) -> Result<(), GatewayError> {
        let verb = if on { "activate" } else { "deactivate" };
        self.post(
            &format!("{}/state?activate={on}", body::item_path(kind, id)),
            &Value::Null,
            &Action::entity(verb, kind, name),
        )
        .await
        .map(drop)
    }

    async fn delete(&self, kind: Kind, id: &str, name: &str) -> Result<(), GatewayError> {
        let action = Action::entity("delete", kind, name);
        Client::delete(self, &body::item_path(kind, id), &action)
            .await
            .map(drop)
    }
}
