//! The export document: ContextForge's own JSON format, read tolerantly and written so that
//! ContextForge's `mcpgateway import` accepts it.
//!
//! Reading accepts what ContextForge writes (tag objects, server tool references by id or name,
//! `auth_value: null`, unknown fields); writing is deterministic (fixed field order, entities sorted
//! by name or URI, tags as plain strings).

mod content_rules;
pub mod credential;
pub mod entity;
pub mod federated;
mod load;
pub mod rules;
mod schema;
mod shape;
pub mod tag;
pub mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::kind::Kind;

pub use load::{
    DEFAULT_MAX_INPUT, Format, LoadError, check_size, document_from_value, from_str, from_value,
    load_path, max_input, parse, parse_size, parse_value, read_text, set_max_input, to_string,
};
pub use schema::schema_json;
pub use shape::UnknownType;
pub use tag::Tag;
pub use validate::{Problem, ValidationError, validate};

/// The document version mcp-gitops writes.
pub const DOCUMENT_VERSION: &str = "2025-03-26";
/// The only credential encryption method ContextForge knows.
pub const ENCRYPTION_METHOD: &str = "AES-256-GCM";

/// A whole export document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "ContextForge export document (mcp-gitops)")]
pub struct Document {
    /// Document format version. mcp-gitops writes "2025-03-26"; ContextForge writes its MCP
    /// protocol version. Any non-empty value is read.
    pub version: String,
    /// When the document was written (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<String>,
    /// Who wrote it (the token's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_by: Option<String>,
    /// The gateway it was exported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_gateway: Option<String>,
    /// How `auth_value`s are encrypted: always "AES-256-GCM".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_method: Option<String>,
    /// The configuration itself.
    #[serde(default)]
    pub entities: Entities,
    /// Counts, dependency links and the options the export ran with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// The entities, one list per kind; any other key is refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct Entities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<Gateway>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Prompt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<Root>,
    /// Keys of `entities` that name no kind, in document order (a loaded document has none:
    /// loading refuses them).
    #[serde(skip)]
    #[schemars(skip)]
    pub unknown_types: Vec<String>,
}

/// Document metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metadata {
    /// Number of entities per kind (plural kind names).
    #[serde(default)]
    pub entity_counts: BTreeMap<String, usize>,
    /// Links from servers to what they compose.
    #[serde(default)]
    pub dependencies: Dependencies,
    /// The options the export ran with (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub export_options: Option<Value>,
}

/// Server links, keyed by server name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dependencies {
    /// Server name → tool names.
    #[serde(default)]
    pub servers_to_tools: BTreeMap<String, Vec<String>>,
    /// Server name → resource URIs.
    #[serde(default)]
    pub servers_to_resources: BTreeMap<String, Vec<String>>,
    /// Server name → prompt names.
    #[serde(default)]
    pub servers_to_prompts: BTreeMap<String, Vec<String>>,
}

/// Who can see an entity on the gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Team,
    Private,
}

/// Read from a string only, so that any other value is a data error naming the field's
/// pointer and the allowed values (serde's derived enum reading makes a number a JSON syntax
/// error with no pointer).
impl<'de> Deserialize<'de> for Visibility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "one of \"public\", \"team\", \"private\"";
        impl serde::de::Visitor<'_> for V {
            type Value = Visibility;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Visibility, E> {
                match s {
                    "public" => Ok(Visibility::Public),
                    "team" => Ok(Visibility::Team),
                    "private" => Ok(Visibility::Private),
                    other => Err(E::custom(format!(
                        "{} is not {EXPECTED}",
                        crate::core::quote::quote(other)
                    ))),
                }
            }
        }
        d.deserialize_str(V)
    }
}

fn yes() -> bool {
    true
}

/// A REST tool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    /// Tool name as the gateway stores it (a slug: letters, digits, `._-/`).
    pub name: String,
    /// Human-readable name.
    #[serde(
        rename = "displayName",
        alias = "display_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// The upstream URL the tool calls.
    pub url: String,
    /// Always "REST" for tools that can be created directly.
    #[serde(default = "rest")]
    pub integration_type: String,
    /// HTTP method: GET, POST, PUT, DELETE or PATCH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Static headers sent upstream (not secret: credentials belong in `auth_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonpath_filter: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// basic, bearer or authheaders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// The upstream credential headers, AES-256-GCM encrypted (see `secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_value: Option<String>,
    /// The peer gateway this entry comes from, as ContextForge's own documents and tests mark
    /// federated items (`gateway_id`, `gateway_name`). Read, never written: such entries are
    /// set aside (see [`federated`]).
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub gateway_id: Option<String>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub gateway_name: Option<String>,
}

fn rest() -> String {
    "REST".to_string()
}

/// A peer MCP gateway whose tools, prompts and resources are federated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Gateway {
    pub name: String,
    /// The peer's MCP endpoint.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SSE or STREAMABLEHTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// What the peer announced when it was last contacted (informational; not applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// basic, bearer or authheaders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// Encrypted credential headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_value: Option<String>,
}

/// A virtual server composing tools, resources and prompts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Server {
    pub name: String,
    /// Optional fixed server id (32 hex), which keeps the server's URLs stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Tools by name (ContextForge's selective export writes ids, which are also read).
    #[serde(default, alias = "associated_tools")]
    pub tool_ids: Vec<String>,
    /// Resources by URI (ContextForge's `associated_resources`: URIs, names or ids).
    #[serde(
        default,
        alias = "associated_resources",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_uris: Vec<String>,
    /// Prompts by name (ContextForge's `associated_prompts`: names or ids).
    #[serde(
        default,
        alias = "associated_prompts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prompt_names: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// A prompt template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Prompt {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Jinja template.
    pub template: String,
    /// Arguments as a JSON Schema object: `properties` (each with a `description`) and
    /// `required`, the form ContextForge's import reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Arguments as a list, accepted on input and folded into `input_schema`.
    #[serde(default, skip_serializing)]
    pub arguments: Option<Vec<PromptArgument>>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// The peer gateway this entry comes from, as ContextForge's own documents and tests mark
    /// federated items (`gateway_id`, `gateway_name`). Read, never written: such entries are
    /// set aside (see [`federated`]).
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub gateway_id: Option<String>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub gateway_name: Option<String>,
}

/// One prompt argument.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PromptArgument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// A resource with its content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Resource {
    pub name: String,
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One of the gateway's allowed MIME types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The resource's text content (absent in ContextForge's own exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// The peer gateway this entry comes from, as ContextForge's own documents and tests mark
    /// federated items (`gateway_id`, `gateway_name`). Read, never written: such entries are
    /// set aside (see [`federated`]).
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub gateway_id: Option<String>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub gateway_name: Option<String>,
}

/// A root the gateway exposes to MCP clients (held in the gateway's memory only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Root {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What every entity kind has in common.
pub trait Entity {
    const KIND: Kind;
    /// The identity within its kind: the name, or the URI for resources and roots.
    fn key(&self) -> &str;
    fn tags(&self) -> &[Tag] {
        &[]
    }
    fn is_active(&self) -> bool {
        true
    }
}

macro_rules! named_entity {
    ($ty:ty, $kind:expr, $key:ident) => {
        impl Entity for $ty {
            const KIND: Kind = $kind;
            fn key(&self) -> &str {
                &self.$key
            }
            fn tags(&self) -> &[Tag] {
                &self.tags
            }
            fn is_active(&self) -> bool {
                self.is_active
            }
        }
    };
}
named_entity!(Tool, Kind::Tool, name);
named_entity!(Gateway, Kind::Gateway, name);
named_entity!(Server, Kind::Server, name);
named_entity!(Prompt, Kind::Prompt, name);
named_entity!(Resource, Kind::Resource, uri);

impl Entity for Root {
    const KIND: Kind = Kind::Root;
    fn key(&self) -> &str {
        &self.uri
    }
}

impl Entities {
    /// How many entities of a kind the document holds.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Tool => self.tools.len(),
            Kind::Gateway => self.gateways.len(),
            Kind::Server => self.servers.len(),
            Kind::Prompt => self.prompts.len(),
            Kind::Resource => self.resources.len(),
            Kind::Root => self.roots.len(),
        }
    }

    pub fn total(&self) -> usize {
        Kind::ALL.iter().map(|k| self.count(*k)).sum()
    }

    /// The keys of a kind's entities, in document order.
    pub fn keys(&self, kind: Kind) -> Vec<&str> {
        fn k<E: Entity>(v: &[E]) -> Vec<&str> {
            v.iter().map(Entity::key).collect()
        }
        match kind {
            Kind::Tool => k(&self.tools),
            Kind::Gateway => k(&self.gateways),
            Kind::Server => k(&self.servers),
            Kind::Prompt => k(&self.prompts),
            Kind::Resource => k(&self.resources),
            Kind::Root => k(&self.roots),
        }
    }

    /// Sort every list by its key, so that output is deterministic.
    pub fn sort(&mut self) {
        fn s<E: Entity>(v: &mut [E]) {
            v.sort_by(|a, b| a.key().cmp(b.key()));
        }
        s(&mut self.tools);
        s(&mut self.gateways);
        s(&mut self.servers);
        s(&mut self.prompts);
        s(&mut self.resources);
        s(&mut self.roots);
    }

    /// `Exported 49 entities: 15 tools, 3 gateways, ...` style list, in display order.
    pub fn summary(&self) -> String {
        Kind::DISPLAY
            .iter()
            .map(|k| k.count(self.count(*k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Prompt {
    /// The prompt's arguments as a JSON Schema object, whichever form the document used.
    pub fn argument_schema(&self) -> Option<Value> {
        if let Some(schema) = &self.input_schema {
            return Some(schema.clone());
        }
        let args = self.arguments.as_ref()?;
        Some(arguments_to_schema(args))
    }
}

/// `[{name, description, required}]` → `{type: object, properties, required}`.
pub fn arguments_to_schema(args: &[PromptArgument]) -> Value {
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    for a in args {
        let mut p = serde_json::Map::new();
        p.insert("type".into(), Value::from("string"));
        p.insert(
            "description".into(),
            Value::from(a.description.clone().unwrap_or_default()),
        );
        props.insert(a.name.clone(), Value::Object(p));
        if a.required {
            required.push(Value::from(a.name.clone()));
        }
    }
    serde_json::json!({"type": "object", "properties": props, "required": required})
}

/// `{properties, required}` → `[{name, description, required}]` (property order kept).
pub fn schema_to_arguments(schema: &Value) -> Vec<PromptArgument> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| PromptArgument {
                    name: name.clone(),
                    description: p
                        .get("description")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                    required: required.contains(&name.as_str()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A document holding `entities` (a JSON object), for tests.
#[cfg(test)]
pub fn test_doc(entities: &str) -> Document {
    from_str(
        &format!(r#"{{"version":"1","entities":{entities}}}"#),
        None,
        "t",
    )
    .expect("test document")
}
