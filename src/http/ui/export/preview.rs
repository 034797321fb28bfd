//! `POST /ui/env/{name}/export/preview` (operator): the entities picked, and apart from them
//! the dependencies the selection would add (the engine's selection code, the same as the
//! API's `include_dependencies`), with "Include these dependencies" (checked) and a
//! "Download" that posts the exact selection to `POST /ui/env/{name}/export`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::{base, failed, posted_picks};
use crate::core::select::picked::picked_value;
use crate::core::select::{Key, Selection};
use crate::engine::export::select_live;
use crate::http::AppState;
use crate::http::api::ApiError;
use crate::http::api::export::env_source;
use crate::http::ui::layout::{self, csrf_field};

/// A list of entities, one `type: key` per line.
fn listed(id: &str, keys: &[&Key]) -> Markup {
    html! {
        ul class="checks" id=(id) {
            @for (k, n) in keys {
                li data-key=(picked_value(*k, n)) {
                    span class="muted" { (k.plural()) ": " } span class="mono" { (n) }
                }
            }
        }
    }
}

/// What the preview shows: the picked entities the gateway holds, and what they add.
struct Shown {
    chosen: Vec<Key>,
    added: Vec<Key>,
    /// Picked but no longer on the gateway.
    gone: Vec<Key>,
}

fn shown(
    picked: &BTreeSet<Key>,
    document: &crate::core::document::Document,
    added: BTreeSet<Key>,
) -> Shown {
    let e = &document.entities;
    let held = |(k, n): &&Key| e.keys(*k).contains(&n.as_str());
    let (chosen, gone): (Vec<&Key>, Vec<&Key>) = picked.iter().partition(|k| held(k));
    Shown {
        chosen: chosen.into_iter().cloned().collect(),
        added: added.into_iter().collect(),
        gone: gone.into_iter().cloned().collect(),
    }
}

/// `POST /ui/env/{name}/export/preview`.
pub async fn page(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Response {
    let (a, _, keys) = match posted_picks(&s, &headers, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let selection = Selection::picked(keys.clone(), true);
    let selected = async {
        let src = env_source(&s, &name)?;
        select_live(&src.client, &selection)
            .await
            .map_err(|e| ApiError::classified(&e, str::to_string))
    };
    let selected = match selected.await {
        Ok(x) => x,
        Err(e) => return failed(&a, "Cannot preview the export", &e),
    };
    let v = shown(&keys, &selected.document, selected.added);
    let b = base(&name);
    let body = html! {
        h1 { "Export preview: " span class="mono" { (name) } }
        section aria-labelledby="selected-h" {
            h2 id="selected-h" { "Selected (" (v.chosen.len()) ")" }
            (listed("selected", &v.chosen.iter().collect::<Vec<_>>()))
            @if !v.gone.is_empty() {
                p class="flash error" id="gone" {
                    "No longer on the gateway, left out: "
                    @for (k, n) in &v.gone { span class="mono" { (k.plural()) ":" (n) } " " }
                }
            }
        }
        section aria-labelledby="dependencies-h" {
            h2 id="dependencies-h" { "Dependencies the selection adds (" (v.added.len()) ")" }
            @if v.added.is_empty() {
                p class="muted" id="no-dependencies" { "None: the selection needs nothing else." }
            } @else {
                p class="muted" { "A server's tools, resources and prompts (and the peer gateway of a federated tool)." }
                (listed("dependencies", &v.added.iter().collect::<Vec<_>>()))
            }
        }
        form method="post" action=(b) id="download" {
            (csrf_field(&a.csrf))
            @for (k, n) in &v.chosen { input type="hidden" name="entity" value=(picked_value(*k, n)); }
            @if !v.added.is_empty() {
                p { label class="check" {
                    input type="checkbox" id="include-dependencies" name="dependencies" value="1" checked;
                    " Include these dependencies"
                } }
            }
            button type="submit" class="primary" id="download-selected" { "Download" }
            " " a href=(b) { "Back to the selection" }
        }
    };
    layout::page(
        StatusCode::OK,
        &format!("Export preview {name}"),
        Some(&a.viewer()),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kind::Kind;

    #[test]
    fn the_preview_tells_picked_entities_the_gateway_lacks_apart() {
        let doc = crate::core::document::from_str(
            r#"{"version":"1","entities":{"servers":[{"name":"ops,core"}]}}"#,
            None,
            "t",
        )
        .unwrap();
        let picked: BTreeSet<Key> = [
            (Kind::Server, "ops,core".to_string()),
            (Kind::Server, "gone".to_string()),
        ]
        .into();
        let v = shown(&picked, &doc, BTreeSet::new());
        assert_eq!(v.chosen, [(Kind::Server, "ops,core".to_string())]);
        assert_eq!(v.gone, [(Kind::Server, "gone".to_string())]);
        assert!(v.added.is_empty());
    }
}
