//! An in-memory gateway for fast engine tests. It takes the bodies `body` builds, stores each
//! entity in the read model's shape (camelCase, an id, `enabled`, a version), and refuses
//! what the real gateway refuses in the ways the engine relies on: 409 on a duplicate name or
//! URI, 404 on an unknown id, 404 on a server link to an unknown id. It logs every operation,
//! fails the operations it is told to, can be unreachable, and calls a hook after each write
//! (a place for a test to cancel a run). It does not encrypt: stored credentials are only
//! those given with [`FakeGateway::set_credential`]; it discovers no tools of peer gateways.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::live::{LiveState, LiveTool};
use super::ops::Gateway;
use super::{Action, GatewayError};
use crate::core::document::validate::identity;
use crate::core::kind::Kind;

/// One operation, as logged and as matched by [`FakeGateway::fail`]. Names are the ones the
/// engine passes (the document's key; a create's target name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    List(Kind),
    ReadCredentials,
    ReadContent(String),
    ReadTeams,
    Create(Kind, String),
    Update(Kind, String),
    SetActive(Kind, String, bool),
    Delete(Kind, String),
}

impl Op {
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create(..) | Op::Update(..) | Op::SetActive(..) | Op::Delete(..)
        )
    }
}

/// How a told operation fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    /// The gateway answers this status and message.
    Status(u16, String),
    /// The connection fails.
    Unreachable,
}

type Hook = Arc<dyn Fn(&Op) + Send + Sync>;

#[derive(Default)]
struct State {
    next: u64,
    /// Entities per kind, in creation order, in the read model's shape.
    items: BTreeMap<Kind, Vec<Map<String, Value>>>,
    /// Resource content by id.
    contents: HashMap<String, String>,
    credentials: HashMap<(Kind, String), String>,
    team: Option<String>,
    failures: Vec<(Op, Fail)>,
    unreachable: bool,
    log: Vec<Op>,
}

/// The in-memory gateway. Share it by reference; every method takes `&self`.
#[derive(Default)]
pub struct FakeGateway {
    state: Mutex<State>,
    after_write: Mutex<Option<Hook>>,
}

const URL: &str = "fake://gateway";

fn key_field(kind: Kind) -> &'static str {
    kind.key_field()
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn camel(k: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in k.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.extend(c.to_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn api(action: &Action, status: u16, message: String) -> GatewayError {
    GatewayError::Api {
        action: action.text.clone(),
        kind: action.kind,
        name: action.name.clone(),
        status,
        message,
    }
}

impl FakeGateway {
    pub fn new() -> FakeGateway {
        FakeGateway::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake gateway lock")
    }

    /// The personal team `personal_team` answers.
    pub fn set_team(&self, id: &str) {
        self.lock().team = Some(id.to_string());
    }

    /// Put an entity straight in, in the read model's shape (`{"name": …, "url": …}`, tags
    /// as strings); its id (given, or new) is returned. Not logged.
    pub fn insert(&self, kind: Kind, item: Value) -> String {
        let Value::Object(mut m) = item else {
            panic!("insert takes an object")
        };
        let mut s = self.lock();
        let id = match (kind, m.get("id").and_then(Value::as_str)) {
            (Kind::Root, _) => str_of(&m, "uri").to_string(),
            (_, Some(id)) => id.to_string(),
            _ => s.new_id(),
        };
        m.insert("id".into(), Value::from(id.clone()));
        m.entry("enabled").or_insert(Value::Bool(true));
        m.entry("version").or_insert(Value::from(1));
        s.items.entry(kind).or_default().push(m);
        id
    }

    /// The encrypted `auth_value` the selective export answers for entity `id`. Like the real
    /// gateway, a changed credential moves the entity's version on.
    pub fn set_credential(&self, kind: Kind, id: &str, encrypted: &str) {
        let mut s = self.lock();
        let changed = s
            .credentials
            .insert((kind, id.to_string()), encrypted.to_string())
            .is_some_and(|old| old != encrypted);
        if changed
            && let Some(item) = s
                .items
                .get_mut(&kind)
                .and_then(|v| v.iter_mut().find(|m| str_of(m, "id") == id))
        {
            let version = item.get("version").and_then(Value::as_i64).unwrap_or(1);
            item.insert("version".into(), Value::from(version + 1));
        }
    }

    /// Fail `op` in this way every time until [`FakeGateway::heal`].
    pub fn fail(&self, op: Op, how: Fail) {
        self.lock().failures.push((op, how));
    }

    /// Forget every told failure and be reachable again.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.failures.clear();
        s.unreachable = false;
    }

    /// Fail every operation as a connection failure.
    pub fn set_unreachable(&self, on: bool) {
        self.lock().unreachable = on;
    }

    /// Call `hook` after every write that succeeded.
    pub fn after_write(&self, hook: impl Fn(&Op) + Send + Sync + 'static) {
        *self.after_write.lock().expect("hook lock") = Some(Arc::new(hook));
    }

    /// Every operation asked for, in order (failed ones included).
    pub fn log(&self) -> Vec<Op> {
        self.lock().log.clone()
    }

    /// The writes asked for, in order.
    pub fn writes(&self) -> Vec<Op> {
        self.log().into_iter().filter(Op::is_write).collect()
    }

    /// How many reads were asked for.
    pub fn reads(&self) -> usize {
        self.log().iter().filter(|o| !o.is_write()).count()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// The stored entity of `kind` keyed `key` (name, or URI), read-model shape.
    pub fn get(&self, kind: Kind, key: &str) -> Option<Map<String, Value>> {
        let s = self.lock();
        s.find_key(kind, key).map(|i| s.items[&kind][i].clone())
    }

    /// Keys (names, or URIs) of `kind`, in creation order.
    pub fn keys(&self, kind: Kind) -> Vec<String> {
        let s = self.lock();
        s.items
            .get(&kind)
            .map(|v| {
                v.iter()
                    .map(|m| str_of(m, key_field(kind)).to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Log `op` and answer a told failure.
    fn enter(
        &self,
        op: Op,
        action: &Action,
    ) -> Result<std::sync::MutexGuard<'_, State>, GatewayError> {
        let mut s = self.lock();
        s.log.push(op.clone());
        if s.unreachable {
            return Err(unreachable());
        }
        match s.failures.iter().find(|(o, _)| *o == op).map(|(_, f)| f) {
            Some(Fail::Unreachable) => Err(unreachable()),
            Some(Fail::Status(code, msg)) => Err(api(action, *code, msg.clone())),
            None => Ok(s),
        }
    }

    fn wrote(&self, op: &Op) {
        let hook = self.after_write.lock().expect("hook lock").clone();
        if let Some(h) = hook {
            h(op);
        }
    }
}

fn unreachable() -> GatewayError {
    GatewayError::Unreachable {
        url: URL.into(),
        reason: "connection refused".into(),
    }
}

impl State {
    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("{:032x}", self.next)
    }

    fn find_key(&self, kind: Kind, key: &str) -> Option<usize> {
        let want = identity(kind, key);
        self.items.get(&kind)?.iter().position(|m| {
            m.get("gatewayId").is_none_or(Value::is_null)
                && identity(kind, str_of(m, key_field(kind))) == want
        })
    }

    fn find_id(&self, kind: Kind, id: &str, action: &Action) -> Result<usize, GatewayError> {
        self.items
            .get(&kind)
            .and_then(|v| v.iter().position(|m| str_of(m, "id") == id))
            .ok_or_else(|| api(action, 404, format!("{} not found: {id}", kind.singular())))
    }

    /// A body's fields in the read model's shape; server links checked.
    fn fields(
        &mut self,
        kind: Kind,
        body: &Value,
        action: &Action,
    ) -> Result<Map<String, Value>, GatewayError> {
        let mut m = match body {
            Value::Object(o) => o.clone(),
            _ => return Err(api(action, 422, "body is not an object".into())),
        };
        // Create bodies of most kinds are wrapped: {"tool": {..}, "team_id", "visibility"}.
        if let Some(Value::Object(inner)) = m.remove(kind.singular()) {
            let outer = std::mem::replace(&mut m, inner);
            for (k, v) in outer {
                m.entry(k).or_insert(v);
            }
        }
        let mut out = Map::new();
        for (k, v) in m {
            match k.as_str() {
                "auth_type" if kind == Kind::Tool => {
                    out.insert("auth".into(), serde_json::json!({ "authType": v }));
                }
                "auth_token" | "auth_username" | "auth_password" | "auth_headers" => {}
                "content" => {
                    out.insert("content".into(), v);
                }
                "associated_tools" | "associated_resources" | "associated_prompts" => {
                    let linked = match k.as_str() {
                        "associated_tools" => Kind::Tool,
                        "associated_resources" => Kind::Resource,
                        _ => Kind::Prompt,
                    };
                    for id in v.as_array().into_iter().flatten() {
                        let id = id.as_str().unwrap_or_default();
                        self.find_id(linked, id, action)?;
                    }
                    let field = if linked == Kind::Tool {
                        "associatedToolIds".into()
                    } else {
                        camel(&k)
                    };
                    out.insert(field, v);
                }
                _ => {
                    out.insert(camel(&k), v);
                }
            }
        }
        Ok(out)
    }
}

impl Gateway for FakeGateway {
    fn url(&self) -> &str {
        URL
    }

    async fn live(&self, kinds: &[Kind]) -> Result<LiveState, GatewayError> {
        let mut out = LiveState::default();
        for kind in kinds {
            let action = Action::new(format!("list {}", kind.plural()));
            let s = self.enter(Op::List(*kind), &action)?;
            let items: Vec<Value> = s
                .items
                .get(kind)
                .map(|v| v.iter().cloned().map(Value::Object).collect())
                .unwrap_or_default();
            let read = |e: serde_json::Error| GatewayError::Protocol {
                action: action.text.clone(),
                reason: e.to_string(),
            };
            let list = Value::Array(items);
            match kind {
                Kind::Tool => {
                    out.tools = serde_json::from_value::<Vec<LiveTool>>(list).map_err(read)?
                }
                Kind::Gateway => out.gateways = serde_json::from_value(list).map_err(read)?,
                Kind::Server => out.servers = serde_json::from_value(list).map_err(read)?,
                Kind::Prompt => out.prompts = serde_json::from_value(list).map_err(read)?,
                Kind::Resource => out.resources = serde_json::from_value(list).map_err(read)?,
                Kind::Root => out.roots = serde_json::from_value(list).map_err(read)?,
            }
        }
        Ok(out)
    }

    async fn stored_credentials(
        &self,
        tools: &[(&str, &str)],
        gateways: &[(&str, &str)],
    ) -> Result<HashMap<(Kind, String), String>, GatewayError> {
        let s = self.enter(
            Op::ReadCredentials,
            &Action::query("read stored credentials"),
        )?;
        let wanted = tools
            .iter()
            .map(|(id, _)| (Kind::Tool, *id))
            .chain(gateways.iter().map(|(id, _)| (Kind::Gateway, *id)));
        Ok(wanted
            .filter_map(|(k, id)| {
                let key = (k, id.to_string());
                s.credentials.get(&key).map(|v| (key, v.clone()))
            })
            .collect())
    }

    async fn resource_contents(
        &self,
        resources: &[(&str, &str)],
    ) -> Result<HashMap<String, Option<String>>, GatewayError> {
        let mut out = HashMap::new();
        for (id, uri) in resources {
            let action = Action::entity("read content of", Kind::Resource, uri);
            let s = self.enter(Op::ReadContent(uri.to_string()), &action)?;
            s.find_id(Kind::Resource, id, &action)?;
            out.insert(id.to_string(), s.contents.get(*id).cloned());
        }
        Ok(out)
    }

    async fn personal_team(&self) -> Result<Option<String>, GatewayError> {
        let s = self.enter(Op::ReadTeams, &Action::new("read the user's teams"))?;
        Ok(s.team.clone())
    }

    async fn create(&self, kind: Kind, name: &str, body: &Value) -> Result<String, GatewayError> {
        let op = Op::Create(kind, name.to_string());
        let action = Action::entity("create", kind, name);
        let id = {
            let mut s = self.enter(op.clone(), &action)?;
            let mut m = s.fields(kind, body, &action)?;
            let key = str_of(&m, key_field(kind)).to_string();
            if s.find_key(kind, &key).is_some() {
                let what = if key_field(kind) == "uri" {
                    "URI"
                } else {
                    "name"
                };
                return Err(api(
                    &action,
                    409,
                    format!(
                        "Public {} already exists with {what}: {key}",
                        kind.singular()
                    ),
                ));
            }
            let id = match (kind, m.get("id").and_then(Value::as_str)) {
                (Kind::Root, _) => key.clone(),
                (_, Some(id)) => id.to_string(),
                _ => s.new_id(),
            };
            if let Some(Value::String(c)) = m.remove("content") {
                s.contents.insert(id.clone(), c);
            }
            m.insert("id".into(), Value::from(id.clone()));
            m.insert("enabled".into(), Value::Bool(true));
            m.insert("version".into(), Value::from(1));
            s.items.entry(kind).or_default().push(m);
            id
        };
        self.wrote(&op);
        Ok(id)
    }

    async fn update(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
        body: &Value,
    ) -> Result<(), GatewayError> {
        let op = Op::Update(kind, name.to_string());
        let action = Action::entity("update", kind, name);
        {
            let mut s = self.enter(op.clone(), &action)?;
            let i = s.find_id(kind, id, &action)?;
            let mut m = s.fields(kind, body, &action)?;
            if let Some(Value::String(c)) = m.remove("content") {
                s.contents.insert(id.to_string(), c);
            }
            let item = &mut s.items.get_mut(&kind).expect("found above")[i];
            let version = item.get("version").and_then(Value::as_i64).unwrap_or(1);
            item.extend(m);
            item.insert("version".into(), Value::from(version + 1));
        }
        self.wrote(&op);
        Ok(())
    }

    async fn set_active(
        &self,
        kind: Kind,
        id: &str,
        name: &str,
        on: bool,
    ) -> Result<(), GatewayError> {
        let op = Op::SetActive(kind, name.to_string(), on);
        let verb = if on { "activate" } else { "deactivate" };
        let action = Action::entity(verb, kind, name);
        {
            let mut s = self.enter(op.clone(), &action)?;
            let i = s.find_id(kind, id, &action)?;
            s.items.get_mut(&kind).expect("found above")[i]
                .insert("enabled".into(), Value::Bool(on));
        }
        self.wrote(&op);
        Ok(())
    }

    async fn delete(&self, kind: Kind, id: &str, name: &str) -> Result<(), GatewayError> {
        let op = Op::Delete(kind, name.to_string());
        let action = Action::entity("delete", kind, name);
        {
            let mut s = self.enter(op.clone(), &action)?;
            let i = s.find_id(kind, id, &action)?;
            s.items.get_mut(&kind).expect("found above").remove(i);
            s.contents.remove(id);
            // A deleted entity leaves the servers that linked it.
            let field = match kind {
                Kind::Tool => "associatedToolIds",
                Kind::Resource => "associatedResources",
                Kind::Prompt => "associatedPrompts",
                _ => "",
            };
            for server in s.items.get_mut(&Kind::Server).into_iter().flatten() {
                if let Some(Value::Array(links)) = server.get_mut(field) {
                    links.retain(|l| l.as_str() != Some(id));
                }
            }
        }
        self.wrote(&op);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn refuses_what_the_real_gateway_refuses() {
        let gw = FakeGateway::new();
        let body = json!({"tool": {"name": "t", "url": "http://x/t"}});
        let id = gw.create(Kind::Tool, "t", &body).await.unwrap();
        let dup = gw.create(Kind::Tool, "T", &body).await.unwrap_err();
        assert_eq!(dup.status(), Some(409), "{dup}");
        let missing = gw.delete(Kind::Tool, "nope", "x").await.unwrap_err();
        assert_eq!(missing.status(), Some(404), "{missing}");
        let server = json!({"server": {"name": "s", "associated_tools": [id, "nope"]}});
        let link = gw.create(Kind::Server, "s", &server).await.unwrap_err();
        assert_eq!(link.status(), Some(404), "{link}");
        assert!(gw.keys(Kind::Server).is_empty());
        assert_eq!(gw.writes().len(), 4);
        assert_eq!(gw.reads(), 0);
    }

    #[tokio::test]
    async fn told_failures_and_reads_in_the_read_model_shape() {
        let gw = FakeGateway::new();
        gw.fail(Op::List(Kind::Root), Fail::Unreachable);
        assert!(matches!(
            gw.live(&[Kind::Root]).await.unwrap_err(),
            GatewayError::Unreachable { .. }
        ));
        let body = json!({"tool": {"name": "t", "url": "http://x/t", "request_type": "POST",
            "tags": ["a"], "auth_type": "bearer", "auth_token": "secret"}});
        let id = gw.create(Kind::Tool, "t", &body).await.unwrap();
        gw.set_active(Kind::Tool, &id, "t", false).await.unwrap();
        let live = gw.live(&[Kind::Tool]).await.unwrap();
        let t = &live.tools[0];
        assert_eq!(
            (t.request_type.as_deref(), t.enabled),
            (Some("POST"), false)
        );
        assert_eq!(
            t.auth.as_ref().unwrap().auth_type.as_deref(),
            Some("bearer")
        );
        // The plaintext helper field is not kept.
        assert!(!format!("{:?}", gw.get(Kind::Tool, "t")).contains("secret"));
    }
}
