//! `GET /ui/jobs`: every import job the API keeps (what `GET /api/v1/jobs` lists), newest
//! first; `GET /ui/jobs/{id}`: one job's counts, progress while it runs (a `<progress>` bar
//! `import.js` moves from the job's event stream; without JavaScript the page shows the state
//! at load), per-entity results, errors and warnings, and its JSON report. Viewers may read.
//! The rendering of a job is shared with the import wizard's last step.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::import::jobs_api;
use super::{AppState, Authed, layout};
use crate::engine::jobs::{Job, JobCounts, JobTarget};
use crate::http::jobs::{self, JobsApi};

/// The UI's routes for jobs.
pub fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/ui/jobs", get(list))
        .route("/ui/jobs/{id}", get(detail))
        .route("/ui/jobs/{id}/events", get(events))
        .route("/ui/jobs/{id}/report", get(report))
}

/// A job's state as the API spells it (`running`, `completed`, ...).
pub fn state(j: &Job) -> String {
    serde_json::json!(j.state)
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The counts in the API's order, with their labels.
pub fn counts(c: &JobCounts) -> [(&'static str, usize); 6] {
    [
        ("total", c.total),
        ("processed", c.processed),
        ("created", c.created),
        ("updated", c.updated),
        ("skipped", c.skipped),
        ("failed", c.failed),
    ]
}

/// What a target is called in a table.
pub fn target_label(t: &JobTarget) -> String {
    t.to_string()
}

/// The state line, the progress bar (fed by `events` while the job runs) and the counts.
pub fn progress(j: &Job, events: &str) -> Markup {
    let c = &j.counts;
    let done = j.state.finished();
    html! {
        p { "State: " strong id="job-state" { (state(j)) } }
        progress id="progress" max=(c.total.max(1)) value=(if done && c.total == 0 { 1 } else { c.processed })
            data-events=[(!done).then(|| events.to_string())] { (c.processed) " of " (c.total) }
        dl id="job-counts" class="counts" {
            @for (label, n) in counts(c) {
                dt { (label) } dd id={ "count-" (label) } { (n) }
            }
        }
    }
}

/// A finished job's summary line and its report link.
pub fn summary(j: &Job, report: &str) -> Markup {
    let c = &j.counts;
    html! {
        section id="summary" aria-label="Summary" {
            h2 { "Summary" }
            p class={ "flash " (if c.failed == 0 && j.errors.is_empty() { "ok" } else { "error" }) } {
                "Import " (state(j)) ": " (c.created) " created, " (c.updated) " updated, "
                (c.skipped) " skipped, " (c.failed) " failed."
            }
            @if let Some(o) = j.outcome.as_ref().filter(|o| o["type"] == "commit") {
                (commit_summary(o))
            }
            p { a id="report" href=(report) download={ "import-" (j.id) ".json" } { "Download report" } }
        }
    }
}

/// What a commit job committed: the commit and its branch, and that the daemon applies it (or,
/// on a review branch, that the environment is unchanged until it is merged).
fn commit_summary(o: &serde_json::Value) -> Markup {
    let branch = o["branch"].as_str().unwrap_or("");
    let files: Vec<&str> = o["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    html! {
        @match o["commit"].as_str() {
            Some(sha) => {
                p id="commit" {
                    "Committed " span class="mono" id="commit-sha" { (sha.get(..12).unwrap_or(sha)) }
                    " on branch " span class="mono" id="commit-branch" { (branch) }
                    @if !files.is_empty() { " (" (files.join(", ")) ")" }
                    "."
                }
                @if o["review"] == true {
                    p id="commit-next" { "The environment's own branch is unchanged: merge " span class="mono" { (branch) } " to apply it." }
                } @else {
                    p id="commit-next" { "The daemon applies it to the gateway at its next reconcile (asked for now)." }
                }
            }
            None => {
                p id="commit" { "Nothing to commit: branch " span class="mono" id="commit-branch" { (branch) } " already holds these entities." }
            }
        }
    }
}

/// Errors, warnings and per-entity results (names, verbs and field names: never a value).
pub fn outcome(j: &Job) -> Markup {
    html! {
        @if !j.errors.is_empty() {
            h2 { "Errors" }
            ul id="job-errors" { @for e in &j.errors { li { (crate::core::quote::clean_lines(e)) } } }
        }
        @if !j.warnings.is_empty() {
            h2 { "Warnings" }
            ul id="job-warnings" { @for w in &j.warnings { li { (crate::core::quote::clean_lines(w)) } } }
        }
        @if !j.results.is_empty() {
            h2 { "Entities" }
            div class="table-wrap" { table id="results" {
                thead { tr { th scope="col" { "Type" } th scope="col" { "Name" }
                             th scope="col" { "Result" } th scope="col" { "Detail" } } }
                tbody {
                    @for r in &j.results {
                        tr data-key=(r.name) {
                            td { (r.kind.plural()) } td class="mono" { (r.name) }
                            td { (serde_json::json!(r.result).as_str().unwrap_or("")) @if let Some(t) = &r.renamed_to { " as " (t) } }
                            td { (r.message.as_deref().unwrap_or("")) (r.fields.join(", ")) }
                        }
                    }
                }
            } }
        }
    }
}

/// A job as JSON to download (what `GET /api/v1/jobs/{id}` returns).
pub fn report_response(j: &Job) -> Response {
    let body = serde_json::to_string_pretty(j).unwrap_or_default();
    let mut r = (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{}.json\"", j.id),
            ),
        ],
        body,
    )
        .into_response();
    super::assets::secure(&mut r);
    r
}

fn api_of(s: &AppState, headers: &HeaderMap) -> Result<(Authed, Arc<JobsApi>), Box<Response>> {
    let (a, ui) = super::session(s, headers)?;
    let api = jobs_api(ui, &a)?.clone();
    Ok((a, api))
}

fn job_of(
    s: &AppState,
    id: &str,
    headers: &HeaderMap,
) -> Result<(Authed, Arc<JobsApi>, Job), Box<Response>> {
    let (a, api) = api_of(s, headers)?;
    match api.store.get(id) {
        Some(j) => Ok((a, api, j)),
        None => Err(Box::new(layout::message(
            StatusCode::NOT_FOUND,
            "No such job",
            Some(&a.viewer()),
            &format!("there is no job {}", crate::core::quote::quote(id)),
        ))),
    }
}

fn when(t: Option<&str>) -> &str {
    t.unwrap_or("—")
}

fn row(j: &Job) -> Markup {
    html! {
        tr data-job=(j.id) {
            td data-label="Job" class="mono" { a href={ "/ui/jobs/" (j.id) } { (j.id) } }
            td data-label="Target" { (target_label(&j.target)) @if j.dry_run { " (dry run)" } }
            td data-label="State" { span class={ "badge j-" (state(j)) } { (state(j)) } }
            td data-label="Started" { (when(j.started_at.as_deref().or(Some(&j.created_at)))) }
            td data-label="Finished" { (when(j.finished_at.as_deref())) }
            @for (label, n) in counts(&j.counts) {
                td data-label=(label) class={ "count-" (label) } { (n) }
            }
        }
    }
}

/// `GET /ui/jobs`.
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let (a, api) = match api_of(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let all = api.store.list();
    let body = html! {
        h1 { "Jobs" }
        @if all.is_empty() {
            p class="muted" id="no-jobs" { "No import job yet: start one from " a href="/ui/import" { "Import" } "." }
        } @else {
            div class="table-wrap" { table class="rows" id="jobs" {
                thead { tr {
                    th scope="col" { "Job" } th scope="col" { "Target" } th scope="col" { "State" }
                    th scope="col" { "Started" } th scope="col" { "Finished" }
                    @for (label, _) in counts(&JobCounts::default()) { th scope="col" { (label) } }
                } }
                tbody { @for j in &all { (row(j)) } }
            } }
        }
    };
    layout::page(StatusCode::OK, "Jobs", Some(&a.viewer()), body)
}

/// `GET /ui/jobs/{id}`.
pub async fn detail(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (a, _, j) = match job_of(&s, &id, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let here = format!("/ui/jobs/{}", j.id);
    let body = html! {
        h1 { "Job " span class="mono" { (j.id) } }
        p { "Target: " (target_label(&j.target)) @if j.dry_run { " (dry run)" } }
        p class="muted" { "Created " (j.created_at) ", started " (when(j.started_at.as_deref()))
            ", finished " (when(j.finished_at.as_deref())) "." }
        (progress(&j, &format!("{here}/events")))
        @if j.state.finished() {
            (summary(&j, &format!("{here}/report")))
        } @else {
            p { a id="reload" href=(here) { "Reload the status" } }
        }
        (outcome(&j))
        p { a href="/ui/jobs" { "All jobs" } }
    };
    layout::page(
        StatusCode::OK,
        "Job",
        Some(&a.viewer()),
        html! { (body) (super::import::script()) },
    )
}

/// `GET /ui/jobs/{id}/events`: the API's event stream, for the session.
pub async fn events(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match job_of(&s, &id, &headers) {
        Ok((_, api, j)) => jobs::event_stream(&api, &j.id),
        Err(r) => *r,
    }
}

/// `GET /ui/jobs/{id}/report`: the job as the API returns it, to download.
pub async fn report(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match job_of(&s, &id, &headers) {
        Ok((_, _, j)) => report_response(&j),
        Err(r) => *r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::jobs::JobKind;

    #[test]
    fn counts_keep_the_api_order() {
        let c = JobCounts {
            total: 6,
            processed: 5,
            created: 1,
            updated: 2,
            skipped: 1,
            failed: 1,
        };
        let got: Vec<_> = counts(&c).into_iter().collect();
        assert_eq!(
            got,
            vec![
                ("total", 6),
                ("processed", 5),
                ("created", 1),
                ("updated", 2),
                ("skipped", 1),
                ("failed", 1)
            ]
        );
    }

    #[test]
    fn outcome_escapes_errors() {
        let mut j = Job::new(
            "j1".into(),
            JobTarget::Gateway("g".into()),
            JobKind::Import,
            "2026-01-01T00:00:00Z",
        );
        j.errors.push("<script>x</script>".into());
        let html = outcome(&j).into_string();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert_eq!(state(&j), "queued");
    }
}
