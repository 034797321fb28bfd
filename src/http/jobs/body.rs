//! What an import request carries, read from a JSON body (ours: `document`, or ContextForge's:
//! `import_data`) or a multipart upload (a file part plus text fields), checked in full before
//! anything runs: a bad strategy, an include that does not parse or a document with problems
//! is refused with every problem and its JSON pointer.

use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::ApiError;
use super::multipart;
use crate::core::document::validate::Problem;
use crate::core::document::{self, Document, LoadError};
use crate::core::policy::Strategy;
use crate::core::secrets::Secret;
use crate::core::select::IncludeSpec;

/// The file name documents from a request body are named by in messages.
pub const BODY: &str = "request body";

/// An import request, checked.
pub struct ImportBody {
    pub document: Document,
    pub strategy: Strategy,
    pub dry_run: bool,
    /// The key the document's credentials are encrypted with (default: the target's).
    pub secret: Option<Secret>,
    /// The target gateway's key, when it differs from the document's.
    pub rekey_secret: Option<Secret>,
    pub include: Option<IncludeSpec>,
    /// A review branch: an import that becomes a commit goes there instead of the
    /// environment's branch.
    pub branch: Option<String>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// A document's load error as problems with pointers.
pub fn load_problem(e: LoadError) -> ApiError {
    let problems = match &e {
        LoadError::Shape {
            pointer, reason, ..
        } => vec![Problem {
            pointer: pointer.clone(),
            reason: reason.clone(),
        }],
        LoadError::UnknownTypes { types, .. } => types
            .iter()
            .map(|t| Problem {
                pointer: "/entities".into(),
                reason: t.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    ApiError::Invalid {
        message: e.to_string(),
        problems,
    }
}

/// The fields of a request: from JSON, or from a multipart form (the file part, or a text
/// field holding the document, becomes `document`).
pub fn fields(headers: &HeaderMap, body: &[u8], doc_keys: &[&str]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if let Some(b) = multipart::boundary(ct) {
        let mut out = serde_json::Map::new();
        for p in multipart::parse(body, &b).map_err(bad)? {
            let text = String::from_utf8(p.data).map_err(|_| bad("a form part is not UTF-8"))?;
            let is_doc = p.filename.is_some() || doc_keys.contains(&p.name.as_str());
            let v = if is_doc {
                document::parse_value(&text, None, p.filename.as_deref().unwrap_or(BODY))
                    .map_err(load_problem)?
            } else {
                match text.trim() {
                    "true" | "on" => Value::Bool(true),
                    "false" | "off" => Value::Bool(false),
                    t => Value::String(t.to_string()),
                }
            };
            let key = if is_doc {
                doc_keys[0].to_string()
            } else {
                p.name
            };
            out.insert(key, v);
        }
        return Ok(Value::Object(out));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
    document::parse_value(text, Some(document::Format::Json), BODY).map_err(|e| bad(e.to_string()))
}

fn text_field<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

/// ContextForge's `selected_entities` (`{"tools": ["a"], "servers": []}`, an empty list: the
/// whole type) as an include spec.
fn selected_entities(v: &Value) -> Result<Option<IncludeSpec>, ApiError> {
    let Some(map) = v.as_object() else {
        return Err(bad("selected_entities must be an object of lists"));
    };
    let mut spec = Vec::new();
    for (kind, names) in map {
        let names = names
            .as_array()
            .ok_or_else(|| bad(format!("selected_entities.{kind} must be a list")))?;
        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
        spec.push(if names.is_empty() {
            format!("{kind}:*")
        } else {
            format!("{kind}:{}", names.join(","))
        });
    }
    if spec.is_empty() {
        return Ok(None);
    }
    IncludeSpec::parse(&spec.join(";"))
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// Check an import request's fields: `doc_key` names the document (`document` or
/// `import_data`).
pub fn import(v: Value, doc_key: &str) -> Result<ImportBody, ApiError> {
    if !v.is_object() {
        return Err(bad("the body must be a JSON object"));
    }
    let strategy = match text_field(&v, "conflict_strategy")? {
        None => Strategy::Update,
        Some(s) => s
            .parse()
            .map_err(|e: crate::core::policy::UnknownStrategy| bad(e.to_string()))?,
    };
    let dry_run = match v.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("dry_run must be true or false")),
    };
    let include = match (text_field(&v, "include")?, v.get("selected_entities")) {
        (Some(s), _) => Some(IncludeSpec::parse(s).map_err(|e| bad(e.to_string()))?),
        (None, Some(sel)) if !sel.is_null() => selected_entities(sel)?,
        _ => None,
    };
    let branch = text_field(&v, "branch")?.map(str::to_string);
    if let Some(b) = &branch
        && !crate::engine::git::valid_branch(b)
    {
        return Err(bad(format!("branch '{b}' is not a valid branch name")));
    }
    let secret = text_field(&v, "secret")?.map(Secret::new);
    let rekey_secret = text_field(&v, "rekey_secret")?.map(Secret::new);
    let raw = v
        .get(doc_key)
        .filter(|d| !d.is_null())
        .cloned()
        .ok_or_else(|| ApiError::Invalid {
            message: format!("{BODY}: no {doc_key}"),
            problems: vec![Problem {
                pointer: format!("/{doc_key}"),
                reason: "required: the export document to import".into(),
            }],
        })?;
    let document = document::document_from_value(raw, BODY).map_err(|e| match e {
        // Pointers are the document's; say where the document is in the body.
        LoadError::Shape {
            file,
            pointer,
            reason,
        } => load_problem(LoadError::Shape {
            file,
            pointer: format!("/{doc_key}{pointer}"),
            reason,
        }),
        e => load_problem(e),
    })?;
    Ok(ImportBody {
        document,
        strategy,
        dry_run,
        secret,
        rekey_secret,
        include,
        branch,
    })
}
