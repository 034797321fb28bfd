//! Bulk tool import: a JSON array of tools, each validated on its own (one bad tool never
//! fails the batch), turned into the gateway's `ToolCreate` with explicit ownership and
//! credentials as helper fields. Pure; the command sends the batches.

use serde::Serialize;
use serde_json::{Value, json};

use crate::core::document::entity::EntityRef;
use crate::core::document::validate::{Context, tool_problems};
use crate::core::document::{LoadError, Tool, from_value};
use crate::core::secrets::Secret;
use crate::gateway::body::{self, Links, Owner};

/// Fields the bulk route takes that a document's tool does not.
const BULK_ONLY: [&str; 2] = ["rate_limit", "timeout"];
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

/// Check item `index` with the document validator's tool rules (pointers `/<index>/field`) and
/// build its `ToolCreate` body with the gateway's body code, or say everything wrong with it.
pub fn prepare(
    index: usize,
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
    let at = |field: &str| format!("/{index}{field}");
    let mut details = Vec::new();
    macro_rules! bad {
        ($field:expr, $message:expr $(,)?) => {
            details.push(Detail {
                field: $field,
                message: $message,
            })
        };
    }
    for k in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        bad!(
            at(&format!("/{k}")),
            format!("unknown field (known: {})", FIELDS.join(", ")),
        );
    }
    for k in ["name", "url"] {
        if !obj.get(k).is_some_and(Value::is_string) {
            bad!(
                at(&format!("/{k}")),
                "is required and must be a string".into()
            );
        }
    }
    // Bulk-only fields: the document has no rate limit, and its timeout is in milliseconds.
    for k in BULK_ONLY {
        if obj.get(k).is_some_and(|v| !v.is_null() && !v.is_u64()) {
            bad!(
                at(&format!("/{k}")),
                "must be a non-negative integer".into()
            );
        }
    }
    let timeout = obj.get("timeout").and_then(Value::as_u64);
    let mut fields = obj.clone();
    fields.retain(|k, _| FIELDS.contains(&k.as_str()) && !BULK_ONLY.contains(&k.as_str()));
    let tool = if details.is_empty() {
        match from_value::<Tool>(Value::Object(fields), "") {
            Ok(t) => Some(t),
            Err(LoadError::Shape {
                pointer, reason, ..
            }) => {
                bad!(at(&pointer), reason);
                None
            }
            Err(e) => {
                bad!(at(""), e.to_string());
                None
            }
        }
    } else {
        None
    };
    let mut creds = None;
    if let Some(t) = &tool {
        let cx = Context { secret, live: None };
        for p in tool_problems(t, &at(""), &cx) {
            bad!(p.pointer, p.reason);
        }
        if let Some(v) = &t.auth_value {
            let flagged = details.iter().any(|d| d.field == at("/auth_value"));
            match secret.map(|s| s.decrypt(v)) {
                None if flagged => {}
                None => bad!(
                    at("/auth_value"),
                    "is encrypted: pass --secret (or set AUTH_ENCRYPTION_SECRET)".into(),
                ),
                Some(Ok(c)) => creds = Some(c),
                // The validator has said why it does not decrypt.
                Some(Err(_)) => {}
            }
        }
    }
    let body = match (&tool, details.is_empty()) {
        (Some(t), true) => {
            let owner = Owner {
                team_id: team_id.map(str::to_string),
            };
            match body::create(
                EntityRef::Tool(t),
                &t.name,
                creds.as_ref(),
                &owner,
                &Links::default(),
            ) {
                Ok(mut b) => Some(b["tool"].take()),
                Err(e) => {
                    bad!(at("/auth_value"), e.0);
                    None
                }
            }
        }
        _ => None,
    };
    match body {
        Some(mut b) if details.is_empty() => {
            if let Some(t) = timeout {
                b["timeout_ms"] = json!(t.saturating_mul(1000));
            }
            Ok(b)
        }
        _ => {
            let message = format!(
                "Validation failed: {}",
                details
                    .iter()
                    .map(|d| format!("{}: {}", d.field, d.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            Err(ItemError { message, details })
        }
    }
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

/// The largest batch the gateway's bulk route takes.
pub const MAX_BATCH: usize = 200;

/// Create `items` on the gateway: each validated on its own, the valid ones sent in batches of
/// `max_batch` (1..=200), the gateway's per-item answers mapped back to the input's indexes.
/// The one bulk path of `import-tools` and the HTTP API.
pub async fn import(
    client: &crate::gateway::Client,
    items: &[Value],
    secret: Option<&Secret>,
    max_batch: usize,
) -> Result<BulkReport, crate::gateway::GatewayError> {
    let team = crate::engine::apply::personal_team(client).await?;
    let mut report = BulkReport::default();
    let mut ready: Vec<(usize, Value, Value)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let name = item.get("name").cloned().unwrap_or(Value::Null);
        match prepare(index, item, secret, team.as_deref()) {
            Ok(body) => ready.push((index, name, body)),
            Err(error) => report.push_failed(Failed { index, name, error }),
        }
    }
    for batch in ready.chunks(max_batch.clamp(1, MAX_BATCH)) {
        let bodies: Vec<Value> = batch.iter().map(|(_, _, b)| b.clone()).collect();
        let resp = client.bulk_import_tools(&bodies).await?;
        let at = |i: &Value| i.as_u64().and_then(|i| batch.get(i as usize));
        for c in resp["created"].as_array().into_iter().flatten() {
            if let Some((index, name, _)) = at(&c["index"]) {
                report.push_created(Created {
                    index: *index,
                    name: name.clone(),
                });
            }
        }
        for e in resp["errors"].as_array().into_iter().flatten() {
            if let Some((index, name, _)) = at(&e["index"]) {
                report.push_failed(Failed {
                    index: *index,
                    name: name.clone(),
                    error: gateway_error(&e["error"]),
                });
            }
        }
    }
    report.sort();
    Ok(report)
}

/// The report as the gateway's own bulk route answers (seed 004): `success`, counts, the
/// created and failed items, `details` and a `message`.
pub fn contextforge_response(report: &BulkReport, total: usize) -> Value {
    let name = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    json!({
        "success": report.failed_count == 0,
        "imported": report.created_count,
        "failed": report.failed_count,
        "total": total,
        "created_count": report.created_count,
        "failed_count": report.failed_count,
        "created": report.created,
        "errors": report.errors,
        "details": {
            "success": report.created.iter().map(|c| name(&c.name)).collect::<Vec<_>>(),
            "failed": report.errors.iter().map(|e| json!({"name": name(&e.name), "error": e.error.message})).collect::<Vec<_>>(),
        },
        "message": format!("Imported {} of {total} tools ({} failed)", report.created_count, report.failed_count),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_judged_on_its_own() {
        let ok = prepare(
            0,
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
            1,
            &json!({"name": "bad name", "url": "ftp://x", "request_type": "TRACE",
                    "auth_type": "bearer", "auth_value": "zzz"}),
            None,
            None,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["/1/name", "/1/url", "/1/request_type", "/1/auth_value"]
        );
        assert!(e.message.starts_with("Validation failed: /1/name: "));
        assert!(prepare(2, &json!("x"), None, None).is_err());

        // The document validator's messages, and type errors with their pointers.
        let e = prepare(
            3,
            &json!({"name": "t", "url": "https://t.example.com", "tags": [7],
                    "timeout": -1, "colour": "red"}),
            None,
            None,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["/3/colour", "/3/timeout"]);
        let e = prepare(
            4,
            &json!({"name": "t", "url": "https://t.example.com", "tags": [7]}),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.details[0].field, "/4/tags/0", "{e:?}");
        let e = prepare(
            5,
            &json!({"name": "t", "url": "https://t.example.com", "auth_type": "bearer",
                    "auth_value": Secret::new("k").encrypt(
                        &crate::core::secrets::Credentials::from_pairs([(
                            "Authorization".to_string(), "Bearer tok".to_string())]))}),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.details.len(), 1, "{e:?}");
        assert!(e.details[0].message.contains("pass --secret"));
        let doc = crate::core::document::from_str(
            r#"{"version":"1","entities":{"tools":[{"name":"t","url":"ftp://x"}]}}"#,
            None,
            "d.json",
        )
        .unwrap();
        let want = crate::core::document::validate(
            &doc,
            "d.json",
            &Context {
                secret: None,
                live: None,
            },
        )
        .unwrap_err();
        let e = prepare(6, &json!({"name": "t", "url": "ftp://x"}), None, None).unwrap_err();
        assert_eq!(e.details[0].message, want.problems[0].reason);
    }

    #[test]
    fn credentials_are_decrypted_into_helper_fields() {
        let s = Secret::new("k");
        let creds = crate::core::secrets::Credentials::from_pairs([(
            "Authorization".to_string(),
            "Bearer tok".to_string(),
        )]);
        let body = prepare(
            0,
            &json!({"name": "t", "url": "https://t.example.com", "auth_type": "bearer",
                    "auth_value": s.encrypt(&creds)}),
            Some(&s),
            None,
        )
        .unwrap();
        assert_eq!(body["auth_token"], "tok");
        let wrong = prepare(
            0,
            &json!({"name": "t", "url": "https://t.example.com", "auth_type": "bearer",
                    "auth_value": s.encrypt(&creds)}),
            Some(&Secret::new("other")),
            None,
        )
        .unwrap_err();
        assert_eq!(wrong.details[0].field, "/0/auth_value");
    }
}
