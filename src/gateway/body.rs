//! Request bodies: what the gateway's create (wrapped) and update (plain, partial) routes take
//! for each kind, with explicit ownership, names in the form the gateway stores, and
//! credentials as plaintext helper fields the gateway encrypts with its own key.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::core::diff::FieldChange;
use crate::core::document::entity::EntityRef;
use crate::core::document::validate::slugify;
use crate::core::document::{self, Tag};
use crate::core::kind::Kind;
use crate::core::secrets::Credentials;
use crate::gateway::encode_component;

/// Who owns what mcp-gitops creates: the token user's personal team, so that the gateway's
/// start-up re-scoping of rows without a team never touches them.
#[derive(Clone, Debug, Default)]
pub struct Owner {
    pub team_id: Option<String>,
}

/// Linked ids a server body needs, resolved by the caller.
#[derive(Clone, Debug, Default)]
pub struct Links {
    pub tools: Vec<String>,
    pub resources: Vec<String>,
    pub prompts: Vec<String>,
}

/// A body that cannot be built (the entity itself is at fault).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BodyError(pub String);

fn tags(t: &[Tag]) -> Value {
    Value::from(t.iter().map(|t| t.0.clone()).collect::<Vec<_>>())
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(k.to_string(), v);
    }
}

/// Credentials as the helper fields `auth_type` + `auth_username`/`auth_password`,
/// `auth_token` or `auth_headers`, which the gateway encrypts itself.
pub fn auth_fields(auth_type: &str, creds: &Credentials) -> Result<Map<String, Value>, BodyError> {
    // The last guard before a credential leaves: a CR or LF would forge header lines on
    // every call the gateway makes with it (validation refuses it first).
    if let Some((k, _)) = creds
        .pairs()
        .find(|(k, v)| crate::core::document::rules::header_value(&format!("{k}{v}")).is_err())
    {
        return Err(BodyError(format!(
            "credential header {} holds CR, LF or NUL",
            crate::core::quote::quote(k)
        )));
    }
    let mut m = Map::new();
    m.insert("auth_type".into(), Value::from(auth_type));
    let authorization = || {
        creds.get("Authorization").ok_or_else(|| {
            BodyError(format!(
                "auth_type {auth_type} needs an Authorization header in the credentials"
            ))
        })
    };
    match auth_type {
        "basic" => {
            let raw = authorization()?
                .strip_prefix("Basic ")
                .ok_or_else(|| BodyError("basic credentials must be 'Basic <base64>'".into()))?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(raw.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| BodyError("basic credentials are not valid base64".into()))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or_else(|| BodyError("basic credentials lack 'user:password'".into()))?;
            m.insert("auth_username".into(), Value::from(user));
            m.insert("auth_password".into(), Value::from(pass));
        }
        "bearer" => {
            let token = authorization()?
                .strip_prefix("Bearer ")
                .ok_or_else(|| BodyError("bearer credentials must be 'Bearer <token>'".into()))?;
            m.insert("auth_token".into(), Value::from(token));
        }
        "authheaders" => {
            let list: Vec<Value> = creds
                .pairs()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            m.insert("auth_headers".into(), Value::from(list));
        }
        other => return Err(BodyError(format!("auth_type '{other}' cannot be applied"))),
    }
    Ok(m)
}

/// The gateway's placeholder for a stored secret (`MASKED_AUTH_VALUE`, default `*****`).
pub const MASKED: &str = "*****";

/// The key mcp-gitops keeps in a resource's `extension_metadata`.
pub const MARKER_KEY: &str = "mcp-gitops";

/// SHA-256 of a resource's content, hex.
pub fn content_sha256(content: &str) -> String {
    crate::core::digest::sha256_hex(content.as_bytes())
}

/// A resource's `extension_metadata` with the content marker: "at entity version `version`,
/// the content hashed to this". A later observation whose version still matches needs not
/// read the content to know it; any other write moves the version on. Other keys are kept.
pub fn content_marker(content: &str, version: i64, existing: Option<&Map<String, Value>>) -> Value {
    let mut m = existing.cloned().unwrap_or_default();
    m.insert(
        MARKER_KEY.into(),
        json!({"content_sha256": content_sha256(content), "version": version}),
    );
    Value::Object(m)
}

fn wrap(kind: Kind, inner: Map<String, Value>, owner: &Owner, vis: Option<Value>) -> Value {
    let mut outer = Map::new();
    outer.insert(kind.singular().to_string(), Value::Object(inner));
    put(
        &mut outer,
        "team_id",
        owner.team_id.clone().map(Value::from),
    );
    if kind != Kind::Tool {
        outer.insert(
            "visibility".into(),
            vis.unwrap_or_else(|| Value::from("public")),
        );
    }
    Value::Object(outer)
}

fn visibility(v: Option<document::Visibility>) -> Value {
    serde_json::to_value(v.unwrap_or_default()).expect("visibility serialises")
}

/// The `POST` body creating `e` under `name` (its own key, or the renamed one).
pub fn create(
    e: EntityRef<'_>,
    name: &str,
    creds: Option<&Credentials>,
    owner: &Owner,
    links: &Links,
) -> Result<Value, BodyError> {
    let kind = e.kind();
    let mut m = Map::new();
    let body = match e {
        EntityRef::Tool(t) => {
            m.insert("name".into(), Value::from(slugify(name)));
            put(
                &mut m,
                "displayName",
                t.display_name.clone().map(Value::from),
            );
            m.insert("url".into(), Value::from(t.url.clone()));
            m.insert("integration_type".into(), Value::from("REST"));
            m.insert(
                "request_type".into(),
                Value::from(
                    t.request_type
                        .clone()
                        .unwrap_or_else(|| "GET".into())
                        .to_ascii_uppercase(),
                ),
            );
            put(
                &mut m,
                "description",
                t.description.clone().map(Value::from),
            );
            put(&mut m, "headers", t.headers.as_ref().map(|h| json!(h)));
            put(&mut m, "input_schema", t.input_schema.clone());
            put(&mut m, "output_schema", t.output_schema.clone());
            put(&mut m, "annotations", t.annotations.clone());
            put(
                &mut m,
                "jsonpath_filter",
                t.jsonpath_filter.clone().map(Value::from),
            );
            m.insert("tags".into(), tags(&t.tags));
            m.insert("visibility".into(), visibility(t.visibility));
            put(&mut m, "team_id", owner.team_id.clone().map(Value::from));
            if let (Some(at), Some(c)) = (&t.auth_type, creds) {
                m.extend(auth_fields(at, c)?);
            }
            wrap(kind, m, owner, None)
        }
        EntityRef::Gateway(g) => {
            m.insert("name".into(), Value::from(slugify(name)));
            m.insert("url".into(), Value::from(g.url.clone()));
            put(
                &mut m,
                "description",
                g.description.clone().map(Value::from),
            );
            put(
                &mut m,
                "transport",
                g.transport
                    .as_ref()
                    .map(|t| Value::from(t.to_ascii_uppercase())),
            );
            m.insert("tags".into(), tags(&g.tags));
            put(
                &mut m,
                "passthrough_headers",
                g.passthrough_headers.as_ref().map(|p| json!(p)),
            );
            m.insert("visibility".into(), visibility(g.visibility));
            put(&mut m, "team_id", owner.team_id.clone().map(Value::from));
            if let (Some(at), Some(c)) = (&g.auth_type, creds) {
                m.extend(auth_fields(at, c)?);
            }
            Value::Object(m)
        }
        EntityRef::Server(s) => {
            put(&mut m, "id", s.id.clone().map(Value::from));
            m.insert("name".into(), Value::from(name));
            put(
                &mut m,
                "description",
                s.description.clone().map(Value::from),
            );
            put(&mut m, "icon", s.icon.clone().map(Value::from));
            m.insert("tags".into(), tags(&s.tags));
            m.insert("associated_tools".into(), json!(links.tools));
            m.insert("associated_resources".into(), json!(links.resources));
            m.insert("associated_prompts".into(), json!(links.prompts));
            wrap(kind, m, owner, Some(visibility(s.visibility)))
        }
        EntityRef::Prompt(p) => {
            m.insert("name".into(), Value::from(slugify(name)));
            put(
                &mut m,
                "description",
                p.description.clone().map(Value::from),
            );
            m.insert("template".into(), Value::from(p.template.clone()));
            m.insert("arguments".into(), prompt_arguments(p));
            m.insert("tags".into(), tags(&p.tags));
            wrap(kind, m, owner, Some(visibility(p.visibility)))
        }
        EntityRef::Resource(r) => {
            m.insert("uri".into(), Value::from(name));
            m.insert("name".into(), Value::from(r.name.clone()));
            put(
                &mut m,
                "description",
                r.description.clone().map(Value::from),
            );
            put(&mut m, "mime_type", r.mime_type.clone().map(Value::from));
            let content = r.content.clone().unwrap_or_default();
            m.insert(
                "extension_metadata".into(),
                content_marker(&content, 1, None),
            );
            m.insert("content".into(), Value::from(content));
            m.insert("tags".into(), tags(&r.tags));
            wrap(kind, m, owner, Some(visibility(r.visibility)))
        }
        EntityRef::Root(r) => {
            m.insert("uri".into(), Value::from(name));
            put(&mut m, "name", r.name.clone().map(Value::from));
            Value::Object(m)
        }
    };
    Ok(body)
}

fn prompt_arguments(p: &document::Prompt) -> Value {
    let args = p
        .argument_schema()
        .map(|s| document::schema_to_arguments(&s))
        .unwrap_or_default();
    json!(args)
}

/// `PUT` body for the fields that changed (the gateway's updates are partial). `None` when
/// nothing but the active flag changed (that goes through the state route).
pub fn update(
    e: EntityRef<'_>,
    changes: &[FieldChange],
    creds: Option<&Credentials>,
    links: &Links,
) -> Result<Option<Value>, BodyError> {
    let mut m = Map::new();
    let changed = |f: &str| changes.iter().any(|c| c.field() == f);
    match e {
        EntityRef::Tool(t) => {
            for c in changes {
                let v = match c.field() {
                    "displayName" => t.display_name.clone().map(Value::from),
                    "url" => Some(Value::from(t.url.clone())),
                    "request_type" => t
                        .request_type
                        .as_ref()
                        .map(|r| r.to_ascii_uppercase().into()),
                    "description" => t.description.clone().map(Value::from),
                    "headers" => t.headers.as_ref().map(|h| json!(h)),
                    "input_schema" => t.input_schema.clone(),
                    "output_schema" => t.output_schema.clone(),
                    "annotations" => t.annotations.clone(),
                    "jsonpath_filter" => t.jsonpath_filter.clone().map(Value::from),
                    "tags" => Some(tags(&t.tags)),
                    "visibility" => Some(visibility(t.visibility)),
                    _ => None,
                };
                put(&mut m, c.field(), v);
            }
            if changed("url") || changed("request_type") {
                m.insert("integration_type".into(), Value::from("REST"));
                put(
                    &mut m,
                    "request_type",
                    t.request_type
                        .as_ref()
                        .map(|r| r.to_ascii_uppercase().into()),
                );
            }
            if (changed("auth_value") || changed("auth_type"))
                && let (Some(at), Some(c)) = (&t.auth_type, creds)
            {
                m.extend(auth_fields(at, c)?);
            }
        }
        EntityRef::Gateway(g) => {
            for c in changes {
                let v = match c.field() {
                    "url" => Some(Value::from(g.url.clone())),
                    "description" => g.description.clone().map(Value::from),
                    "transport" => g.transport.as_ref().map(|t| t.to_ascii_uppercase().into()),
                    "tags" => Some(tags(&g.tags)),
                    "passthrough_headers" => g.passthrough_headers.as_ref().map(|p| json!(p)),
                    "visibility" => Some(visibility(g.visibility)),
                    _ => None,
                };
                put(&mut m, c.field(), v);
            }
            if (changed("auth_value") || changed("auth_type"))
                && let (Some(at), Some(c)) = (&g.auth_type, creds)
            {
                m.extend(auth_fields(at, c)?);
            } else if !m.is_empty() {
                // The gateway's PUT /gateways/{id} replaces the stored credentials with an
                // empty set unless a credential field is given (1.0.7: a tags-only update wipes
                // them). Its masked placeholder as the token tells it to keep what it has.
                m.insert("auth_token".into(), Value::from(MASKED));
            }
        }
        EntityRef::Server(s) => {
            for c in changes {
                let (k, v) = match c.field() {
                    "description" => ("description", s.description.clone().map(Value::from)),
                    "icon" => ("icon", s.icon.clone().map(Value::from)),
                    "tags" => ("tags", Some(tags(&s.tags))),
                    "visibility" => ("visibility", Some(visibility(s.visibility))),
                    "tool_ids" => ("associated_tools", Some(json!(links.tools))),
                    "resource_uris" => ("associated_resources", Some(json!(links.resources))),
                    "prompt_names" => ("associated_prompts", Some(json!(links.prompts))),
                    _ => continue,
                };
                put(&mut m, k, v);
            }
        }
        EntityRef::Prompt(p) => {
            for c in changes {
                let (k, v) = match c.field() {
                    "description" => ("description", p.description.clone().map(Value::from)),
                    "template" => ("template", Some(Value::from(p.template.clone()))),
                    "input_schema" => ("arguments", Some(prompt_arguments(p))),
                    "tags" => ("tags", Some(tags(&p.tags))),
                    "visibility" => ("visibility", Some(visibility(p.visibility))),
                    _ => continue,
                };
                put(&mut m, k, v);
            }
        }
        EntityRef::Resource(r) => {
            for c in changes {
                let v = match c.field() {
                    "name" => Some(Value::from(r.name.clone())),
                    "description" => r.description.clone().map(Value::from),
                    "mime_type" => r.mime_type.clone().map(Value::from),
                    "content" => r.content.clone().map(Value::from),
                    "tags" => Some(tags(&r.tags)),
                    "visibility" => Some(visibility(r.visibility)),
                    _ => None,
                };
                put(&mut m, c.field(), v);
            }
        }
        EntityRef::Root(r) => {
            if changed("name") {
                m.insert(
                    "name".into(),
                    Value::from(r.name.clone().unwrap_or_default()),
                );
            }
        }
    }
    Ok((!m.is_empty()).then_some(Value::Object(m)))
}

/// Path of one entity by its id (roots: by URI).
pub fn item_path(kind: Kind, id: &str) -> String {
    format!("/v1/{}/{}", kind.plural(), encode_component(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_helper_fields() {
        let basic = Credentials::from_pairs([(
            "Authorization".to_string(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("wx:p:w")
            ),
        )]);
        let m = auth_fields("basic", &basic).unwrap();
        assert_eq!(m["auth_username"], "wx");
        assert_eq!(m["auth_password"], "p:w");
        let bearer =
            Credentials::from_pairs([("Authorization".to_string(), "Bearer t0k".to_string())]);
        assert_eq!(auth_fields("bearer", &bearer).unwrap()["auth_token"], "t0k");
        let headers = Credentials::from_pairs([
            ("X-Key".to_string(), "1".to_string()),
            ("X-Tenant".to_string(), "a".to_string()),
        ]);
        assert_eq!(
            auth_fields("authheaders", &headers).unwrap()["auth_headers"],
            json!([{"key":"X-Key","value":"1"},{"key":"X-Tenant","value":"a"}])
        );
        assert!(auth_fields("basic", &headers).is_err());
        let forged = Credentials::from_pairs([(
            "Authorization".to_string(),
            "Bearer t\r\nX-Evil: 1".to_string(),
        )]);
        assert_eq!(
            auth_fields("bearer", &forged).unwrap_err().0,
            "credential header 'Authorization' holds CR, LF or NUL"
        );
        assert!(auth_fields("bearer", &basic).is_err());
    }
}
