//! `GET /ui/backups`: every environment's scheduled backup (`backup:` in daemon.yaml): where it
//! commits, its last result, and the newest snapshot commits of its backup file (read with
//! `engine::backup::history`); `GET /ui/env/{name}/backups/{sha}`: the snapshot at that commit
//! planned against the live gateway the way `plan` plans the environment's documents, shown
//! as the plan page shows it. Read only: restoring is the CLI's `restore`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::{AppState, Authed, layout, plan};
use crate::core::verb::Verb;
use crate::daemon::EnvHandle;
use crate::engine::backup::{self, BackupTarget, SnapshotCommit};

/// How many snapshot commits the page lists per environment.
pub const HISTORY: usize = 20;

/// The UI's routes for backups.
pub fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/ui/backups", get(list))
        .route("/ui/env/{name}/backups/{sha}", get(diff))
}

fn clean(e: &impl std::fmt::Display) -> String {
    crate::core::quote::clean_lines(&e.to_string())
}

async fn history(t: &BackupTarget) -> Result<Vec<SnapshotCommit>, String> {
    let t = t.clone();
    match tokio::task::spawn_blocking(move || backup::history(&t, HISTORY)).await {
        Ok(r) => r.map_err(|e| clean(&e)),
        Err(e) => Err(clean(&e)),
    }
}

fn commits(name: &str, list: &[SnapshotCommit]) -> Markup {
    html! {
        @if list.is_empty() {
            p class="muted" { "No snapshot committed yet." }
        } @else {
            div class="table-wrap" { table class="rows backups" data-env=(name) {
                thead { tr { th scope="col" { "Commit" } th scope="col" { "Time" }
                             th scope="col" { "Subject" } th scope="col" { span class="skip" { "Diff" } } } }
                tbody { @for c in list {
                    tr data-commit=(c.commit.0) {
                        td data-label="Commit" class="mono" { (c.commit.short()) }
                        td data-label="Time" { (c.at) }
                        td data-label="Subject" { (c.subject) }
                        td data-label="" { a href={ "/ui/env/" (name) "/backups/" (c.commit.0) } { "Diff against live" } }
                    }
                } }
            } }
        }
    }
}

async fn section(e: &EnvHandle) -> Markup {
    let name = &e.shared.name;
    let last = e.shared.status().backup.and_then(|b| b.last);
    html! {
        section class="backup" aria-label={ "Backups of " (name) } data-env=(name) {
            h2 { span class="mono" { (name) } }
            @match &e.backup {
                None => p class="muted" { "No scheduled backup (no backup: in daemon.yaml)." },
                Some(t) => {
                    p class="muted" { "Commits to " span class="mono" { (t.remote.url) "@" (t.branch) ":" (t.path) } }
                    p { "Last backup: " @match &last {
                        Some(b) => { (b.outcome.label()) " " span class="muted" { (b.at) }
                            @if let Some(err) = &b.error { " " span class="error" { (clean(err)) } } }
                        None => "none yet",
                    } }
                    @match history(t).await {
                        Ok(list) => (commits(name, &list)),
                        Err(why) => p class="flash error" role="alert" { "Cannot read the backup repository: " (why) },
                    }
                }
            }
        }
    }
}

/// `GET /ui/backups`.
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut sections = Vec::new();
    for e in &s.envs {
        sections.push(section(e).await);
    }
    let body = html! {
        h1 { "Backups" }
        p class="muted" { "The " (HISTORY) " newest snapshots of each environment's scheduled backup. "
            "Restoring one is the CLI's " span class="mono" { "mcp-gitops restore" } "." }
        @for m in &sections { (m) }
        @if s.envs.is_empty() { p class="muted" { "daemon.yaml declares no environment." } }
    };
    layout::page(StatusCode::OK, "Backups", Some(&a.viewer()), body)
}

fn refused(a: &Authed, code: StatusCode, title: &str, text: &str) -> Response {
    layout::message(code, title, Some(&a.viewer()), text)
}

/// `GET /ui/env/{name}/backups/{sha}`: the snapshot planned against the live gateway.
pub async fn diff(
    State(s): State<Arc<AppState>>,
    Path((name, sha)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let e = match super::env(&s, &name, &a) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let Some(target) = e.backup.clone() else {
        return refused(
            &a,
            StatusCode::NOT_FOUND,
            "No backup",
            &format!("environment {name} has no scheduled backup"),
        );
    };
    if !backup::valid_sha(&sha) {
        return refused(
            &a,
            StatusCode::NOT_FOUND,
            "No such snapshot",
            "not a commit id",
        );
    }
    let read = {
        let (t, sha) = (target.clone(), sha.clone());
        tokio::task::spawn_blocking(move || backup::snapshot(&t, &sha)).await
    };
    let snap = match read {
        Ok(Ok(at)) => at,
        Ok(Err(why)) => {
            return refused(&a, StatusCode::NOT_FOUND, "No such snapshot", &clean(&why));
        }
        Err(why) => {
            return refused(
                &a,
                StatusCode::INTERNAL_SERVER_ERROR,
                "No snapshot",
                &clean(&why),
            );
        }
    };
    let mut t = match e.load().await.map(|l| l.target) {
        Ok(t) => t,
        Err(why) => {
            return refused(
                &a,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot plan",
                &clean(&why),
            );
        }
    };
    // The snapshot is the desired state; nothing it lacks is deleted (no prune).
    t.desired = snap.document;
    t.prune = None;
    let body = match t.plan().await {
        Ok(p) => {
            let steps = p.steps();
            let changes = steps
                .iter()
                .filter(|s| matches!(s.verb, Verb::Create | Verb::Update | Verb::Delete))
                .count();
            html! {
                h1 { "Snapshot " span class="mono" { (snap.commit.short()) } " of " span class="mono" { (name) } }
                p class="muted" { "The backup at " span class="mono" { (snap.name) } " against the live gateway: what restoring it would change." }
                (plan::summary_bar(&steps))
                @if changes == 0 {
                    p id="diff-state" { "The live gateway matches this snapshot." }
                } @else {
                    p id="diff-state" { (changes) " entit" (if changes == 1 { "y differs" } else { "ies differ" }) " from this snapshot." }
                }
                h2 { "Entities" }
                (plan::entities(&steps))
                p class="muted" { "Read only. To restore it: " span class="mono" {
                    "mcp-gitops restore --repo " (target.remote.url) " --rev " (snap.commit.short()) " --path " (target.path) } }
                p { a href="/ui/backups" { "All backups" } }
            }
        }
        Err(err) => plan::failed(&name, &err),
    };
    layout::page(
        StatusCode::OK,
        &format!("Snapshot {}", snap.commit.short()),
        Some(&a.viewer()),
        body,
    )
}
