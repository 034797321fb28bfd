//! How an engine run is shown: per-entity lines, notes and one summary line as text, the
//! same as one JSON object, and the audit line of a key rotation.

use serde_json::Value;

use crate::core::diff::CredentialMap;
use crate::core::kind::Kind;
use crate::engine::apply::Keys;
use crate::engine::apply::{Outcome, Report, Verb};
use crate::gateway::Client;

/// The progress counter shown on a terminal while a run goes (20 entities or more).
pub fn progress(_: &crate::engine::apply::EntityResult, done: usize, total: usize) {
    if total >= 20 {
        eprint!("\r  applying {done}/{total}");
        if done == total {
            eprintln!();
        }
    }
}

fn counts(r: &Report, bucket: Verb) -> Vec<String> {
    Kind::DISPLAY
        .iter()
        .filter_map(|k| {
            let n = r.count(Some(*k), bucket);
            (n > 0).then(|| k.count(n))
        })
        .collect()
}

fn line(r: &crate::engine::apply::EntityResult, dry: bool) -> String {
    let name = match &r.renamed_to {
        Some(to) => format!("{} as {to}", r.name),
        None => r.name.clone(),
    };
    let (mark, verb) = match (&r.outcome, dry) {
        (Outcome::Created, false) => ("+", "created".to_string()),
        (Outcome::Created, true) => ("+", "would create".to_string()),
        (Outcome::Updated { .. }, false) => ("~", "updated".to_string()),
        (Outcome::Updated { .. }, true) => ("~", "would update".to_string()),
        (Outcome::Unchanged, _) => ("=", "unchanged".to_string()),
        (Outcome::Deleted, false) => ("-", "deleted".to_string()),
        (Outcome::Deleted, true) => ("-", "would delete".to_string()),
        (Outcome::Skipped { .. }, _) => ("-", "skipped".to_string()),
        (Outcome::Failed { .. }, false) => ("!", "failed".to_string()),
        (Outcome::Failed { .. }, true) => ("!", "would fail".to_string()),
    };
    let tail = match &r.outcome {
        Outcome::Updated { .. } => format!(": {}", r.changes.join("; ")),
        Outcome::Skipped { reason } => format!(": {reason}"),
        Outcome::Failed { error, .. } => format!(": {error}"),
        _ => String::new(),
    };
    format!("  {mark} {verb} {} {name}{tail}\n", r.kind)
}

/// The text report: failures and skips always, every entity with `verbose`, notes, then the
/// summary line (`Imported: 15 tools, 3 gateways, ...`).
pub fn text(r: &Report, not_selected: usize, verbose: bool, verb: &str) -> String {
    let mut out = String::new();
    for res in &r.results {
        let always = matches!(res.outcome.verb(), Verb::Fail | Verb::Skip);
        if verbose || always {
            out.push_str(&line(res, r.dry_run));
        }
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let unchanged = r.count(None, Verb::Unchanged);
    let skipped = r.count(None, Verb::Skip) + not_selected;
    let failed = r.failed();
    if r.dry_run {
        let created = counts(r, Verb::Create);
        let updated: Vec<String> = Kind::DISPLAY
            .iter()
            .filter_map(|k| {
                let n = r.count(Some(*k), Verb::Update);
                (n > 0).then(|| format!("{} ({})", k.count(n), r.updated_fields(*k).join(", ")))
            })
            .collect();
        let none = |v: Vec<String>| {
            if v.is_empty() {
                "nothing".to_string()
            } else {
                v.join(", ")
            }
        };
        let deleted = counts(r, Verb::Delete);
        let delete = if deleted.is_empty() {
            String::new()
        } else {
            format!("; delete {}", deleted.join(", "))
        };
        out.push_str(&format!(
            "Would create {}; update {}{delete}; leave {unchanged} unchanged; skip {skipped}; fail {failed}; conflicts: none\n",
            none(created),
            none(updated),
        ));
        return out;
    }
    let mut applied: Vec<String> = Vec::new();
    for k in Kind::DISPLAY {
        let n = r.count(Some(k), Verb::Create) + r.count(Some(k), Verb::Update);
        if n > 0 {
            applied.push(k.count(n));
        }
    }
    let deleted = counts(r, Verb::Delete);
    if !deleted.is_empty() {
        applied.push(format!("deleted {}", deleted.join(", ")));
    }
    let mut beside = Vec::new();
    if unchanged > 0 {
        beside.push(format!("{unchanged} unchanged"));
    }
    if skipped > 0 {
        beside.push(format!(
            "{skipped} item{} skipped",
            if skipped == 1 { "" } else { "s" }
        ));
    }
    if failed > 0 {
        beside.push(format!("{failed} failed"));
    }
    out.push_str(&format!(
        "{verb}: {}",
        if applied.is_empty() {
            "nothing".to_string()
        } else {
            applied.join(", ")
        }
    ));
    if !beside.is_empty() {
        out.push_str(&format!(" ({})", beside.join(", ")));
    }
    out.push('\n');
    out
}

/// The same as one JSON object.
pub fn json(r: &Report, not_selected: usize) -> Value {
    r.to_json(not_selected)
}

/// One audit line for a key rotation: who, when, which entities, key fingerprints (never
/// keys). None when no credential was written.
pub fn audit(
    r: &Report,
    keys: &Keys,
    credentials: &CredentialMap,
    who: &str,
    client: &Client,
    dry: bool,
) -> Option<String> {
    let (from, to) = (keys.document.as_ref()?, keys.gateway.as_ref()?);
    let rotated: Vec<String> = r
        .results
        .iter()
        .filter(|res| credentials.contains_key(&(res.kind, res.name.clone())))
        .filter(|res| match &res.outcome {
            Outcome::Created => true,
            Outcome::Updated { fields } => fields.iter().any(|f| f == "auth_value"),
            _ => false,
        })
        .map(|res| format!("{} {}", res.kind, res.name))
        .collect();
    if rotated.is_empty() {
        return None;
    }
    Some(format!(
        "audit: {}key rotation by {} at {} on {}: {} credential{} re-encrypted from key {} to key {}: {}",
        if dry { "(dry run) " } else { "" },
        who,
        super::now_rfc3339(),
        client.url(),
        rotated.len(),
        if rotated.len() == 1 { "" } else { "s" },
        from.fingerprint(),
        to.fingerprint(),
        rotated.join(", ")
    ))
}
