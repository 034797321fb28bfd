//! Prune: delete what an environment owns and no longer declares. Ownership is a tag,
//! `mcp-gitops:<owner>`, that `apply` sets on everything the environment declares while prune
//! is on; nothing without it is ever deleted, and federated entities (which the gateway
//! manages for its peers) never are. Roots carry no tags and are never pruned. Pure.

use std::collections::HashSet;

use serde::Serialize;

use super::{Observed, Step, StepAction};
use crate::core::document::tag::{Tag, normalize};
use crate::core::document::validate::identity;
use crate::core::document::{Document, Entity};
use crate::core::kind::Kind;

/// The kinds prune may delete, in the order deletes run (reverse dependency order).
pub const DELETE_ORDER: [Kind; 5] = [
    Kind::Server,
    Kind::Prompt,
    Kind::Resource,
    Kind::Tool,
    Kind::Gateway,
];

/// How a run prunes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunePolicy {
    /// The ownership tag, `mcp-gitops:<owner>`.
    pub marker: String,
    /// Refuse a plan deleting more than this share (percent) of the owned entities, or all
    /// of them.
    pub max_delete_percent: u8,
    /// `--allow-mass-delete`.
    pub allow_mass_delete: bool,
}

/// The ownership tag for `owner`, checked against the gateway's tag rules
/// (`^[a-z0-9]([a-z0-9-:.]*[a-z0-9])?$`, at most 100 characters).
pub fn marker_tag(owner: &str) -> Result<String, MarkerError> {
    let tag = normalize(&format!("mcp-gitops:{owner}"));
    let ok = tag.len() <= 100
        && tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:.".contains(c))
        && tag.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(tag)
    } else {
        Err(MarkerError {
            owner: crate::core::quote::quote(owner).to_string(),
            tag: crate::core::quote::quote(&tag).to_string(),
        })
    }
}

/// A prune owner that does not make a gateway tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "prune owner {owner} does not make a valid gateway tag ({tag}): use lower-case letters, digits, '-', '.' or ':'"
)]
pub struct MarkerError {
    pub owner: String,
    pub tag: String,
}

fn add(tags: &mut Vec<Tag>, marker: &str) {
    if !tags.iter().any(|t| t.normalized() == marker) {
        tags.push(Tag(marker.to_string()));
    }
}

/// Tag every taggable entity of `doc` with the ownership marker.
pub fn mark(doc: &mut Document, marker: &str) {
    let e = &mut doc.entities;
    e.tools.iter_mut().for_each(|x| add(&mut x.tags, marker));
    e.gateways.iter_mut().for_each(|x| add(&mut x.tags, marker));
    e.servers.iter_mut().for_each(|x| add(&mut x.tags, marker));
    e.prompts.iter_mut().for_each(|x| add(&mut x.tags, marker));
    e.resources
        .iter_mut()
        .for_each(|x| add(&mut x.tags, marker));
}

/// A prune the policy refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error(
    "refusing to delete {deletes} of the {owned} entities marked {marker} ({}%, more than the {limit}% allowed{}): e.g. {examples}; check the environment's documents, or pass --allow-mass-delete",
    deletes * 100 / owned.max(&1),
    if deletes == owned { ", and all of them" } else { "" }
)]
pub struct MassDelete {
    pub deletes: usize,
    pub owned: usize,
    pub limit: u8,
    pub marker: String,
    pub examples: String,
}

fn owned<E: Entity>(list: &[E], marker: &str) -> Vec<String> {
    list.iter()
        .filter(|e| e.tags().iter().any(|t| t.normalized() == marker))
        .map(|e| e.key().to_string())
        .collect()
}

/// The delete steps: every live, non-federated entity carrying the marker that `desired`
/// does not declare, in reverse dependency order; refused when too many.
pub fn deletes(
    desired: &Document,
    observed: &Observed,
    policy: &PrunePolicy,
) -> Result<Vec<Step>, MassDelete> {
    let declared: HashSet<(Kind, String)> = Kind::ALL
        .iter()
        .flat_map(|k| {
            desired
                .entities
                .keys(*k)
                .into_iter()
                .map(move |key| (*k, identity(*k, key)))
        })
        .collect();
    // `observed.document` holds no federated entities.
    let live = &observed.document.entities;
    let m = policy.marker.as_str();
    let mut total = 0;
    let mut steps = Vec::new();
    for kind in DELETE_ORDER {
        let mut keys = match kind {
            Kind::Server => owned(&live.servers, m),
            Kind::Prompt => owned(&live.prompts, m),
            Kind::Resource => owned(&live.resources, m),
            Kind::Tool => owned(&live.tools, m),
            Kind::Gateway => owned(&live.gateways, m),
            Kind::Root => Vec::new(),
        };
        keys.sort();
        total += keys.len();
        for key in keys {
            if !declared.contains(&(kind, identity(kind, &key))) {
                steps.push(Step {
                    kind,
                    target: key.clone(),
                    key,
                    action: StepAction::Delete,
                });
            }
        }
    }
    let n = steps.len();
    let too_many = n > 0 && (n == total || n * 100 > total * policy.max_delete_percent as usize);
    if too_many && !policy.allow_mass_delete {
        let examples: Vec<String> = steps
            .iter()
            .take(3)
            .map(|s| format!("{} {}", s.kind, s.key))
            .collect();
        return Err(MassDelete {
            deletes: n,
            owned: total,
            limit: policy.max_delete_percent,
            marker: policy.marker.clone(),
            examples: examples.join(", "),
        });
    }
    Ok(steps)
}

/// Entities `desired` declares that live already carry another owner's marker of the same
/// `family` (e.g. `mcp-gitops:k8s.`): `(kind, key, that marker)`. A second config claiming an
/// entity is a conflict to report, never a tug of war. Pure.
pub fn foreign_owners(
    desired: &Document,
    observed: &Observed,
    marker: &str,
    family: &str,
) -> Vec<(Kind, String, String)> {
    fn check<E: Entity>(
        kind: Kind,
        want: &[E],
        live: &[E],
        marker: &str,
        family: &str,
        out: &mut Vec<(Kind, String, String)>,
    ) {
        let declared: HashSet<String> = want.iter().map(|e| identity(kind, e.key())).collect();
        for e in live
            .iter()
            .filter(|e| declared.contains(&identity(kind, e.key())))
        {
            let other = e
                .tags()
                .iter()
                .map(|t| t.normalized())
                .find(|t| t.starts_with(family) && t != marker);
            if let Some(t) = other {
                out.push((kind, e.key().to_string(), t));
            }
        }
    }
    let (w, l) = (&desired.entities, &observed.document.entities);
    let mut out = Vec::new();
    check(Kind::Tool, &w.tools, &l.tools, marker, family, &mut out);
    check(
        Kind::Gateway,
        &w.gateways,
        &l.gateways,
        marker,
        family,
        &mut out,
    );
    check(
        Kind::Server,
        &w.servers,
        &l.servers,
        marker,
        family,
        &mut out,
    );
    check(
        Kind::Prompt,
        &w.prompts,
        &l.prompts,
        marker,
        family,
        &mut out,
    );
    check(
        Kind::Resource,
        &w.resources,
        &l.resources,
        marker,
        family,
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::test_doc;
    use crate::engine::apply::Observed;

    macro_rules! doc {
        ($($t:tt)*) => {
            test_doc(&serde_json::json!($($t)*).to_string())
        };
    }

    fn observed(doc: Document) -> Observed {
        Observed {
            document: doc,
            credentials: Default::default(),
            unreadable: Vec::new(),
            ids: Default::default(),
            resources: Default::default(),
        }
    }

    fn policy(limit: u8, allow: bool) -> PrunePolicy {
        PrunePolicy {
            marker: "mcp-gitops:dev".into(),
            max_delete_percent: limit,
            allow_mass_delete: allow,
        }
    }

    fn live() -> Document {
        let mut d = doc!({
            "tools": [
                {"name": "a", "url": "http://x/a", "tags": ["mcp-gitops:dev"]},
                {"name": "b", "url": "http://x/b", "tags": ["mcp-gitops:dev"]},
                {"name": "c", "url": "http://x/c", "tags": ["mcp-gitops:dev"]},
                {"name": "hand-made", "url": "http://x/h"},
                {"name": "other-env", "url": "http://x/o", "tags": ["mcp-gitops:prod"]}
            ],
            "servers": [{"name": "s", "tags": ["MCP-GitOps:Dev"]}],
            "roots": [{"uri": "file:///r"}]
        });
        d.entities.sort();
        d
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{} {}", s.kind, s.key))
            .collect()
    }

    #[test]
    fn deletes_only_marked_undeclared_entities_servers_first() {
        let desired = doc!({
            "tools": [{"name": "a", "url": "http://x/a"}, {"name": "b", "url": "http://x/b"}]
        });
        let steps = deletes(&desired, &observed(live()), &policy(100, false)).unwrap();
        assert_eq!(names(&steps), ["server s", "tool c"]);
        assert!(steps.iter().all(|s| s.action == StepAction::Delete));
    }

    #[test]
    fn mass_delete_is_refused_unless_allowed() {
        let desired = doc!({
            "tools": [{"name": "a", "url": "http://x/a"}]
        });
        // 3 of 4 owned = 75% > 50%.
        let err = deletes(&desired, &observed(live()), &policy(50, false)).unwrap_err();
        assert_eq!((err.deletes, err.owned), (3, 4));
        assert!(err.to_string().contains("--allow-mass-delete"), "{err}");
        assert_eq!(
            deletes(&desired, &observed(live()), &policy(50, true))
                .unwrap()
                .len(),
            3
        );
        // Deleting everything owned is refused whatever the share.
        let empty = doc!({});
        let err = deletes(&empty, &observed(live()), &policy(100, false)).unwrap_err();
        assert!(err.to_string().contains("all of them"), "{err}");
    }

    #[test]
    fn nothing_marked_nothing_deleted() {
        let empty = doc!({});
        let unmarked = doc!({
            "tools": [{"name": "hand-made", "url": "http://x/h"}]
        });
        assert!(
            deletes(&empty, &observed(unmarked), &policy(50, false))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn marking_adds_the_tag_once() {
        let mut d = live();
        mark(&mut d, "mcp-gitops:dev");
        let t = &d
            .entities
            .tools
            .iter()
            .find(|t| t.name == "a")
            .unwrap()
            .tags;
        assert_eq!(t.len(), 1);
        let h = &d
            .entities
            .tools
            .iter()
            .find(|t| t.name == "hand-made")
            .unwrap()
            .tags;
        assert_eq!(h, &vec![Tag("mcp-gitops:dev".into())]);
    }

    #[test]
    fn marker_tags_follow_the_gateway_rules() {
        assert_eq!(marker_tag("Prod").unwrap(), "mcp-gitops:prod");
        assert_eq!(marker_tag("eu west").unwrap(), "mcp-gitops:eu-west");
        assert!(marker_tag("a/b").is_err());
        assert!(marker_tag("x-").is_err());
    }

    #[test]
    fn a_second_owner_of_the_family_is_a_conflict() {
        let desired = doc!({"tools": [
            {"name": "a", "url": "http://x/a"},
            {"name": "hand-made", "url": "http://x/h"},
            {"name": "other-env", "url": "http://x/o"}
        ]});
        let found = foreign_owners(&desired, &observed(live()), "mcp-gitops:dev", "mcp-gitops:");
        assert_eq!(
            found,
            [(
                Kind::Tool,
                "other-env".to_string(),
                "mcp-gitops:prod".to_string()
            )]
        );
        // Another family's marker is not ours to judge.
        assert!(
            foreign_owners(
                &desired,
                &observed(live()),
                "mcp-gitops:k8s.a",
                "mcp-gitops:k8s."
            )
            .is_empty()
        );
    }
}
