//! Bulk tool import: a JSON array of tools, each validated on its own (one bad tool never
//! fails the batch), turned into the gateway's `ToolCreate` with explicit ownership and
//! credentials as helper fields. Pure; the command sends the batches.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::core::document::Tag;
use crate::core::document::validate::{check_name, slugify};
use crate::core::secrets::Secret;
use crate::gateway::body::auth_fields;

const REQUEST_TYPES: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];
const AUTH_TYPES: &[&str] = &["basic", "bearer", "authheaders"];
/// Fields an item may carry.
const FIELDS: &[&str] = &[
    "name",
    "url",
    "integration_type",
    "request_type",
    "description",
    "headers",
    "input_schema",
    "output_schema",
    "tags",
    "rate_limit",
    "timeout",
    "auth_type",
    "auth_value",
    "visibility",
    "displayName",
    "annotations",
];

/// One field problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub field: String,
    pub message: String,
}

/// Why one item was not created.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemError {
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
}

/// One failed item of the input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failed {
    pub index: usize,
    pub name: Value,
    pub error: ItemError,
}

/// One created item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Created {
    pub index: usize,
    pub name: Value,
}

/// The report, in the gateway's shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BulkReport {
    pub created_count: usize,
    pub failed_count: usize,
    pub created: Vec<Created>,
    pub errors: Vec<Failed>,
}

impl BulkReport {
    pub fn push_created(&mut self, c: Created) {
        self.created_count += 1;
        self.created.push(c);
    }
    pub fn push_failed(&mut self, f: Failed) {
        self.failed_count += 1;
        self.errors.push(f);
    }
    pub fn sort(&mut self) {
        self.created.sort_by_key(|c| c.index);
        self.errors.sort_by_key(|e| e.index);
    }
}

/// Check one item and build its `ToolCreate` body, or say everything wrong with it.
pub fn prepare(
    item: &Value,
    secret: Option<&Secret>,
    team_id: Option<&str>,
) -> Result<Value, ItemError> {
    let Some(obj) = item.as_object() else {
        return Err(ItemError {
            message: "a tool must be a JSON object".into(),
            details: vec![],
        });
    };
    let mut details = Vec::new();
    let mut bad = |field: &str, message: String| {
        details.push(Detail {
            field: field.into(),
            message,
        })
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str);
    for k in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        bad(k, format!("unknown field (known: {})", FIELDS.join(", ")));
    }
    match text("name") {
        Some(n) => {
            if let Err(e) = check_name(n) {
                bad("name", e);
            }
        }
        None => bad("name", "is required and must be a string".into()),
    }
    match text("url") {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
        _ => bad("url", "is required and must be an http(s) URL".into()),
    }
    if let Some(t) = obj.get("integration_type")
        && t != "REST"
    {
        bad(
            "integration_type",
            format!("{t} cannot be created; only REST"),
        );
    }
    let method = text("request_type").unwrap_or("GET").to_ascii_uppercase();
    if !REQUEST_TYPES.contains(&method.as_str()) {
        bad(
            "request_type",
            format!("'{method}' is not one of {}", REQUEST_TYPES.join(", ")),
        );
    }
    for k in ["description"] {
        if obj.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            bad(k, "must be a string".into());
        }
    }
    if let Some(h) = obj.get("headers").filter(|v| !v.is_null())
        && !h
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
    {
        bad("headers", "must be an object of string values".into());
    }
    for k in ["input_schema", "output_schema"] {
        if obj.get(k).is_some_and(|v| !v.is_object() && !v.is_null()) {
            bad(k, "must be a JSON Schema object".into());
        }
    }
    let tags: Vec<Tag> = match obj.get("tags") {
        None | Some(Value::Null) => vec![],
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(t) => t,
            Err(_) => {
                bad("tags", "must be a list of strings".into());
                vec![]
            }
        },
    };
    for k in ["rate_limit", "timeout"] {
        if obj.get(k).is_some_and(|v| !v.is_null() && !v.is_u64()) {
            bad(k, "must be a non-negative integer".into());
        }
    }
    let mut auth = Map::new();
    match (text("auth_type"), text("auth_value")) {
        (None, None) => {}
        (Some(t), _) if !AUTH_TYPES.contains(&t) => bad(
            "auth_type",
            format!("'{t}' is not one of {}", AUTH_TYPES.join(", ")),
        ),
        (Some(_), None) | (None, Some(_)) => bad(
            "auth_value",
            "auth_type and auth_value go together (auth_value encrypted as in export documents)"
                .into(),
        ),
        (Some(t), Some(v)) => match secret.map(|s| s.decrypt(v)) {
            None => bad(
                "auth_value",
                "is encrypted: pass --secret (or set AUTH_ENCRYPTION_SECRET)".into(),
            ),
            Some(Err(e)) => bad("auth_value", e.to_string()),
            Some(Ok(creds)) => match auth_fields(t, &creds) {
                Ok(m) => auth = m,
                Err(e) => bad("auth_value", e.0),
            },
        },
    }
    if !details.is_empty() {
        let message = format!(
            "Validation failed: {}",
            details
                .iter()
                .map(|d| format!("{}: {}", d.field, d.message))
                .collect::<Vec<_>>()
                .join("; ")
        );
        return Err(ItemError { message, details });
    }

    let mut body = Map::new();
    body.insert(
        "name".into(),
        Value::from(slugify(text("name").unwrap_or_default())),
    );
    body.insert("url".into(), obj["url"].clone());
    body.insert("integration_type".into(), Value::from("REST"));
    body.insert("request_type".into(), Value::from(method));
    for k in [
        "description",
        "headers",
        "input_schema",
        "output_schema",
        "displayName",
        "annotations",
    ] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            body.insert(k.into(), v.clone());
        }
    }
    body.insert(
        "tags".into(),
        json!(tags.iter().map(|t| &t.0).collect::<Vec<_>>()),
    );
    if let Some(t) = obj.get("timeout").and_then(Value::as_u64) {
        body.insert("timeout_ms".into(), json!(t.saturating_mul(1000)));
    }
    body.insert(
        "visibility".into(),
        obj.get("visibility")
            .cloned()
            .unwrap_or_else(|| Value::from("public")),
    );
    if let Some(team) = team_id {
        body.insert("team_id".into(), Value::from(team));
    }
    body.extend(auth);
    Ok(Value::Object(body))
}

/// The gateway's per-item error object, in the report's shape.
pub fn gateway_error(e: &Value) -> ItemError {
    let message = e
        .get("message")
        .or_else(|| e.get("detail"))
        .and_then(Value::as_str)
        .map_or_else(|| e.to_string(), str::to_string);
    let details = e
        .get("details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .map(|x| Detail {
                    field: x["field"].as_str().unwrap_or_default().to_string(),
                    message: x["message"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    ItemError { message, details }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_judged_on_its_own() {
        let ok = prepare(
            &json!({"name": "Weather_API", "url": "https://w.example.com", "request_type": "post",
                    "tags": ["Weather"], "timeout": 5, "rate_limit": 10}),
            None,
            Some("team1"),
        )
        .unwrap();
        assert_eq!(ok["name"], "weather-api");
        assert_eq!(ok["request_type"], "POST");
        assert_eq!(ok["timeout_ms"], 5000);
        assert_eq!(ok["team_id"], "team1");
        assert!(ok.get("rate_limit").is_none());

        let e = prepare(
            &json!({"name": "bad name", "url": "ftp://x", "request_type": "TRACE",
                    "auth_type": "bearer", "auth_value": "zzz"}),
            None,
            None,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["name", "url", "request_type", "auth_value"]);
        assert!(e.message.starts_with("Validation failed: name: "));
        assert!(prepare(&json!("x"), None, None).is_err());
    }

    #[test]
    fn credentials_are_decrypted_into_helper_fields() {
        let s = Secret::new("k");
        let creds = crate::core::secrets::Credentials::from_pairs([(
            "Authorization".to_string(),
            "Bearer tok".to_string(),
        )]);
        let body = prepare(
            &json!({"name": "t", "url": "https://t.example.com", "auth_type": "bearer",
                    "auth_value": s.encrypt(&creds)}),
            Some(&s),
            None,
        )
        .unwrap();
        assert_eq!(body["auth_token"], "tok");
        let wrong = prepare(
            &json!({"name": "t", "url": "https://t.example.com", "auth_type": "bearer",
                    "auth_value": s.encrypt(&creds)}),
            Some(&Secret::new("other")),
            None,
        )
        .unwrap_err();
        assert_eq!(wrong.details[0].field, "auth_value");
    }
}
