//! The wizard's preview page, rendered from the API's preview value (`http::jobs::preview_value`):
//! either the document's problems (each with its entity and JSON pointer, the entities with
//! problems highlighted, no Import button), or what the import would do: counts by type,
//! conflicts, dependencies, a strategy choice and per-entity selection. Only names and field
//! names are shown: never a value of the document (credentials are shown as present).

use maud::{Markup, html};
use serde_json::Value;

use crate::http::ui::layout::csrf_field;

/// The strategies the engine supports, in the order offered.
pub const STRATEGIES: [(&str, &str); 4] = [
    ("update", "Update: write the fields that differ"),
    ("skip", "Skip: leave existing entities as they are"),
    ("rename", "Rename: create a copy under a new name"),
    (
        "fail",
        "Fail: refuse the whole import if anything conflicts",
    ),
];

/// One entity of the uploaded document: its type, index, name and whether it has credentials.
pub struct Listed {
    pub kind: String,
    pub index: usize,
    pub name: String,
    pub credentials: bool,
}

/// The entities of a parsed document, in its order.
pub fn listed(doc: &Value) -> Vec<Listed> {
    let mut out = Vec::new();
    let Some(entities) = doc.get("entities").and_then(Value::as_object) else {
        return out;
    };
    for (kind, items) in entities {
        for (index, e) in items.as_array().into_iter().flatten().enumerate() {
            let name = ["name", "uri", "id"]
                .iter()
                .find_map(|k| e.get(*k).and_then(Value::as_str))
                .unwrap_or("(unnamed)")
                .to_string();
            let credentials = [
                "auth_value",
                "auth_headers",
                "oauth_config",
                "passthrough_headers",
            ]
            .iter()
            .any(|k| e.get(*k).is_some_and(|v| !v.is_null()));
            out.push(Listed {
                kind: kind.clone(),
                index,
                name,
                credentials,
            });
        }
    }
    out
}

/// A problem's pointer in the document (the request's `/document` prefix taken off) and the
/// entity it is in (`/entities/{kind}/{index}/…`).
pub fn locate(pointer: &str) -> (String, Option<(String, usize)>) {
    let p = pointer.strip_prefix("/document").unwrap_or(pointer);
    let p = if p.is_empty() { "/" } else { p };
    let mut parts = p.split('/').skip(1);
    let entity = match (parts.next(), parts.next(), parts.next()) {
        (Some("entities"), Some(kind), Some(i)) => i.parse().ok().map(|i| (kind.to_string(), i)),
        _ => None,
    };
    (p.to_string(), entity)
}

/// Where an entity is in a document: its type and index.
type At = Option<(String, usize)>;

/// The problems of an invalid document and its entities with those highlighted.
pub fn problems(v: &Value, doc: Option<&Value>) -> Markup {
    let entities = doc.map(listed).unwrap_or_default();
    let problems: Vec<(String, At, String)> = v["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let (pointer, entity) = locate(p["pointer"].as_str().unwrap_or(""));
            (
                pointer,
                entity,
                p["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let name_of = |e: &At| {
        e.as_ref().and_then(|(k, i)| {
            entities
                .iter()
                .find(|l| &l.kind == k && l.index == *i)
                .map(|l| format!("{} {}", k, l.name))
        })
    };
    let bad = |l: &Listed| {
        problems
            .iter()
            .any(|(_, e, _)| e.as_ref() == Some(&(l.kind.clone(), l.index)))
    };
    html! {
        div class="flash error" role="alert" id="invalid" {
            "This document cannot be imported: " (v["error"].as_str().unwrap_or("it has problems"))
            ". Fix the problems below and upload it again."
        }
        h2 { "Problems" }
        ul id="problems" {
            @for (pointer, entity, reason) in &problems {
                li class="problem" {
                    @if let Some(n) = name_of(entity) { strong { (n) } ": " }
                    code { (pointer) } " — " (reason)
                }
            }
            @if problems.is_empty() { li { (v["error"].as_str().unwrap_or("")) } }
        }
        @if !entities.is_empty() {
            h2 { "Entities in the document" }
            table id="entities" {
                thead { tr { th { "Type" } th { "Name" } th { "State" } } }
                tbody {
                    @for l in &entities {
                        @let b = bad(l);
                        tr id={ "entity-" (l.kind) "-" (l.index) } class=[b.then_some("problem")] {
                            td { (l.kind) } td class="mono" { (l.name) }
                            td { @if b { "has problems" } @else { "ok" } }
                        }
                    }
                }
            }
        }
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// What a valid document's import would do, and the form that starts it.
pub fn plan(v: &Value, doc: &Value, action: &str, strategy: &str, csrf: &str) -> Markup {
    let items: Vec<&Value> = v["items"].as_array().into_iter().flatten().collect();
    let deps: Vec<&Value> = v["dependencies"].as_array().into_iter().flatten().collect();
    let conflicts: Vec<&&Value> = items.iter().filter(|i| i["conflict"] == true).collect();
    let with_credentials: Vec<Listed> = listed(doc).into_iter().filter(|l| l.credentials).collect();
    let summary = v["summary"].as_object().cloned().unwrap_or_default();
    let refused = v["import_refused"].as_str();
    let commits = v.get("import_commits").filter(|c| c.is_object());
    html! {
        h2 { "Counts by type" }
        table id="counts" {
            thead { tr { th { "Type" } th { "Create" } th { "Update" } th { "Skip" } th { "Unchanged" } } }
            tbody {
                @for (kind, by) in &summary {
                    tr data-kind=(kind) {
                        td { (kind) }
                        td { (count(&by["create"])) } td { (count(&by["update"])) }
                        td { (count(&by["skip"])) } td { (count(&by["unchanged"])) }
                    }
                }
            }
        }
        h2 { "Conflicts" }
        @if conflicts.is_empty() { p id="conflicts" class="muted" { "No entity of the document exists on the gateway with other values." } }
        @else {
            ul id="conflicts" {
                @for c in &conflicts {
                    li data-key=(c["name"].as_str().unwrap_or("")) data-action=(c["action"].as_str().unwrap_or("")) {
                        (c["kind"].as_str().unwrap_or("")) " " strong class="mono" { (c["name"].as_str().unwrap_or("")) }
                        " exists on the gateway"
                        @if let Some(f) = c["fields"].as_array().filter(|f| !f.is_empty()) {
                            ", differs in " (f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        }
                        ": " (c["action"].as_str().unwrap_or(""))
                        @if let Some(r) = c["renamed_to"].as_str() { " as " span class="mono" { (r) } }
                    }
                }
            }
        }
        h2 { "Dependencies to be created" }
        @if deps.is_empty() { p id="dependencies" class="muted" { "None." } }
        @else {
            ul id="dependencies" {
                @for d in &deps { li { (d["kind"].as_str().unwrap_or("")) " " span class="mono" { (d["name"].as_str().unwrap_or("")) } } }
            }
        }
        @if !with_credentials.is_empty() {
            p id="credentials" class="muted" {
                "Credentials present (encrypted, not shown): "
                (with_credentials.iter().map(|l| format!("{} {}", l.kind, l.name)).collect::<Vec<_>>().join(", "))
            }
        }
        h2 { "Conflict strategy" }
        form method="get" action=(action) id="strategy" {
            fieldset {
                legend { "When an entity already exists" }
                @for (value, label) in STRATEGIES {
                    label class="choice" {
                        input type="radio" name="strategy" value=(value) checked[value == strategy];
                        " " (label)
                    }
                }
            }
            button type="submit" { "Preview with this strategy" }
        }
        h2 { "Entities" }
        @if let Some(why) = refused {
            p class="flash error" role="alert" id="import-refused" { "Import refused: " (why) }
        }
        @if let Some(c) = commits {
            p class="flash" role="status" id="import-commits" {
                "This environment is kept at its Git source: the import becomes a commit of the selected entities to "
                span class="mono" { (c["path"].as_str().filter(|p| !p.is_empty()).unwrap_or(".")) }
                " on branch " span class="mono" { (c["branch"].as_str().unwrap_or("")) }
                " of " span class="mono" { (c["repository"].as_str().unwrap_or("")) }
                ", which the daemon then applies. Nothing is written to the gateway by this wizard."
            }
        }
        form method="post" action=(action) id="import-form" {
            (csrf_field(csrf))
            input type="hidden" name="strategy" value=(strategy);
            table id="items" {
                thead { tr { th { "Import" } th { "Type" } th { "Name" } th { "Action" } th { "Why" } } }
                tbody {
                    @for i in &items {
                        @let kind = i["kind"].as_str().unwrap_or("");
                        @let name = i["name"].as_str().unwrap_or("");
                        @let dep = i["dependency"] == true;
                        tr data-key=(name) class=[(i["conflict"] == true).then_some("conflict")] {
                            td {
                                @if dep { span class="muted" { "dependency" } }
                                @else {
                                    input type="checkbox" name="entity" value={ (kind) ":" (name) } checked
                                        aria-label={ "Import " (kind) " " (name) };
                                }
                            }
                            td { (kind) } td class="mono" { (name) }
                            td { (i["action"].as_str().unwrap_or("")) @if let Some(r) = i["renamed_to"].as_str() { " as " (r) } }
                            td { (i["reason"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
            @if refused.is_none() {
                button type="submit" id="import" { (if commits.is_some() { "Commit" } else { "Import" }) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_problem_is_located_in_its_entity_without_the_request_prefix() {
        assert_eq!(
            locate("/document/entities/tools/1/url"),
            ("/entities/tools/1/url".into(), Some(("tools".into(), 1)))
        );
        assert_eq!(locate("/document"), ("/".into(), None));
        assert_eq!(locate("/version"), ("/version".into(), None));
    }

    #[test]
    fn problems_name_their_entity_highlight_it_and_show_no_value() {
        let doc = json!({"entities": {"tools": [
            {"name": "good", "auth_value": "SECRET-CANARY"},
            {"name": "broken", "url": 7}
        ]}});
        let v = json!({"valid": false, "error": "invalid document",
            "problems": [{"pointer": "/document/entities/tools/1/url", "reason": "must be a string"}]});
        let html = problems(&v, Some(&doc)).into_string();
        assert!(html.contains("tools broken"), "{html}");
        assert!(html.contains("/entities/tools/1/url"));
        assert!(
            html.contains(r#"id="entity-tools-1" class="problem""#),
            "{html}"
        );
        assert!(!html.contains(r#"id="entity-tools-0" class="problem""#));
        assert!(!html.contains("SECRET-CANARY"));
        assert!(!html.contains("id=\"import\""));
    }

    #[test]
    fn a_plan_shows_conflicts_and_credentials_as_present_and_refusal_takes_the_button() {
        let doc = json!({"entities": {"tools": [{"name": "a", "auth_value": "SECRET-CANARY"}]}});
        let v = json!({"valid": true, "summary": {"tools": {"update": 1}}, "dependencies": [],
            "items": [{"kind": "tool", "name": "a", "action": "update", "conflict": true,
                "fields": ["description"], "dependency": false}]});
        let html = plan(&v, &doc, "/x", "update", "csrf").into_string();
        assert!(html.contains("differs in description"), "{html}");
        assert!(html.contains("Credentials present"));
        assert!(!html.contains("SECRET-CANARY"));
        assert!(html.contains(r#"value="tool:a" checked"#), "{html}");
        assert!(html.contains("id=\"import\""));
        let mut refused = v.clone();
        refused["import_refused"] = json!("auto mode");
        let html = plan(&refused, &doc, "/x", "update", "csrf").into_string();
        assert!(html.contains("Import refused: auto mode"));
        assert!(!html.contains("id=\"import\""));
        let mut commits = v.clone();
        commits["import_commits"] =
            json!({"repository": "file:///r.git", "branch": "main", "path": "envs/prod"});
        let html = plan(&commits, &doc, "/x", "update", "csrf").into_string();
        assert!(html.contains(r#"id="import">Commit</button>"#), "{html}");
        assert!(html.contains("becomes a commit"), "{html}");
    }
}
