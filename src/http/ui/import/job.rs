//! The wizard's last step: the import job's page (a `<progress>` bar the job's event stream
//! moves through `import.js`, a plain link to reload it without JavaScript), its summary once
//! finished, its JSON report, and its event stream for the session (the API's own stream).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

use super::{base, jobs_api, page};
use crate::engine::jobs::{Job, JobTarget};
use crate::http::jobs;
use crate::http::ui::{AppState, Authed, jobs as ui_jobs, layout};

/// The job `id` if it imports into environment `name`.
fn job_of(
    s: &AppState,
    name: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<(Authed, Arc<jobs::JobsApi>, Job), Box<Response>> {
    let (a, ui) = crate::http::ui::session(s, headers)?;
    let api = jobs_api(ui, &a)?.clone();
    let job = api
        .store
        .get(id)
        .filter(|j| j.target == JobTarget::Environment(name.to_string()));
    match job {
        Some(j) => Ok((a, api, j)),
        None => Err(Box::new(layout::message(
            StatusCode::NOT_FOUND,
            "No such import",
            Some(&a.viewer()),
            &format!("environment {name} has no import job {id}"),
        ))),
    }
}

/// `GET /ui/env/{name}/import/job/{id}`: progress, then the summary.
pub async fn page_of(
    State(s): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (a, _, j) = match job_of(&s, &name, &id, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let here = format!("{}/job/{id}", base(&name));
    let body = html! {
        h1 { "Import into " span class="mono" { (name) } }
        p { "Step 3 of 3: the import job " span class="mono" { (j.id) } "." }
        (ui_jobs::progress(&j, &format!("{here}/events")))
        @if j.state.finished() {
            (ui_jobs::summary(&j, &format!("{here}/report")))
        } @else {
            p { a id="reload" href=(here) { "Reload the status" } }
        }
        (ui_jobs::outcome(&j))
        p { a href={ "/ui/jobs/" (j.id) } { "This job among all jobs" } }
        p { a href=(base(&name)) { "Import another document" } }
    };
    page(&a, StatusCode::OK, "Import job", body)
}

/// `GET /ui/env/{name}/import/job/{id}/events`: the API's event stream, for the session.
pub async fn events(
    State(s): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match job_of(&s, &name, &id, &headers) {
        Ok((_, api, j)) => jobs::event_stream(&api, &j.id),
        Err(r) => *r,
    }
}

/// `GET /ui/env/{name}/import/job/{id}/report`: the job as the API returns it, to download.
pub async fn report(
    State(s): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let j = match job_of(&s, &name, &id, &headers) {
        Ok((_, _, j)) => j,
        Err(r) => return *r,
    };
    ui_jobs::report_response(&j)
}
