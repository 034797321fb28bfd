//! Choosing part of a document: by kind (`--types`, `--exclude-types`), tag (`--tags`),
//! name or URI globs (`--include "tools:weather_*,servers:ai-*"`), activity
//! (`--include-inactive`), or entities picked by their exact keys ([`picked`]: the web UI's
//! checkboxes), closed over dependencies (a server brings what it composes, a federated tool
//! brings its peer gateway). Pure: export and import share it.

use std::collections::{BTreeMap, BTreeSet};

use globset::{Glob, GlobMatcher};

use crate::core::document::validate::slugify;
use crate::core::document::{Document, Entities, Entity};
use crate::core::kind::{Kind, UnknownKind};

pub mod picked;
pub use picked::{PickError, parse_picked};

/// An entity's identity: its kind and its name (URI for resources and roots).
pub type Key = (Kind, String);

/// `--include` patterns per kind.
#[derive(Clone, Debug, Default)]
pub struct IncludeSpec {
    patterns: BTreeMap<Kind, Vec<(String, GlobMatcher)>>,
}

/// A malformed `--include`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncludeError {
    #[error("--include: {0}")]
    Kind(#[from] UnknownKind),
    #[error("--include: '{0}' has no entity type; write it as type:pattern, e.g. tools:{0}")]
    NoKind(String),
    #[error("--include: '{0}' is not a valid pattern: {1}")]
    Glob(String, String),
    #[error("--include is empty")]
    Empty,
}

impl IncludeSpec {
    /// Parse `"tools:weather_api,translate;servers:ai-*"` or `"tool:*,server:ai-*,root:workspace"`.
    /// A piece without a `type:` prefix belongs to the type before it.
    pub fn parse(spec: &str) -> Result<IncludeSpec, IncludeError> {
        let mut out = IncludeSpec::default();
        for group in spec.split(';') {
            let mut current: Option<Kind> = None;
            for piece in group.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (kind, pattern) = match piece.split_once(':') {
                    Some((prefix, rest)) => match prefix.parse::<Kind>() {
                        Ok(k) => (k, rest.trim()),
                        // URIs carry colons: "roots:file:///a,https://b" continues roots.
                        Err(e) => match current {
                            Some(k @ (Kind::Resource | Kind::Root)) => (k, piece),
                            _ => return Err(e.into()),
                        },
                    },
                    None => (
                        current.ok_or_else(|| IncludeError::NoKind(piece.into()))?,
                        piece,
                    ),
                };
                current = Some(kind);
                if pattern.is_empty() {
                    return Err(IncludeError::NoKind(piece.into()));
                }
                let glob = Glob::new(pattern)
                    .map_err(|e| IncludeError::Glob(pattern.into(), e.kind().to_string()))?
                    .compile_matcher();
                out.patterns
                    .entry(kind)
                    .or_default()
                    .push((pattern.to_string(), glob));
            }
        }
        if out.patterns.is_empty() {
            return Err(IncludeError::Empty);
        }
        Ok(out)
    }

    /// Entities named exactly (names, or URIs for resources and roots), no pattern: what a
    /// selective export lists.
    pub fn exact<'a>(
        names: impl IntoIterator<Item = (Kind, &'a str)>,
    ) -> Result<IncludeSpec, IncludeError> {
        let mut out = IncludeSpec::default();
        for (kind, name) in names {
            let glob = Glob::new(&globset::escape(name))
                .map_err(|e| IncludeError::Glob(name.into(), e.kind().to_string()))?
                .compile_matcher();
            out.patterns
                .entry(kind)
                .or_default()
                .push((name.to_string(), glob));
        }
        if out.patterns.is_empty() {
            return Err(IncludeError::Empty);
        }
        Ok(out)
    }

    /// Does a key match a pattern of its kind? Names also match in the gateway's slug form.
    pub fn matches(&self, kind: Kind, key: &str) -> bool {
        let Some(pats) = self.patterns.get(&kind) else {
            return false;
        };
        pats.iter().any(|(raw, g)| {
            g.is_match(key)
                || (!matches!(kind, Kind::Resource | Kind::Root)
                    && (g.is_match(slugify(key)) || raw.replace('_', "-") == slugify(key)))
        })
    }
}

/// What to select.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these kinds (None: all).
    pub types: Option<Vec<Kind>>,
    /// Never these kinds, not even as dependencies.
    pub exclude_types: Vec<Kind>,
    /// Any-of tag filter (compared in normalised form).
    pub tags: Vec<String>,
    pub include: Option<IncludeSpec>,
    /// Only the entities with exactly these keys (no pattern, no slug form): what a person
    /// ticked. Combined with the other filters like `include`.
    pub picked: Option<BTreeSet<Key>>,
    pub include_inactive: bool,
    /// Close the selection over dependencies.
    pub dependencies: bool,
}

impl Selection {
    /// Exactly the entities `keys` names (active or not), with their dependencies or without.
    pub fn picked(keys: BTreeSet<Key>, dependencies: bool) -> Selection {
        Selection {
            picked: Some(keys),
            include_inactive: true,
            dependencies,
            ..Selection::default()
        }
    }
}

/// The filters of `export` and of the API's export, as given: comma-separated kinds and
/// tags, an include spec; every one is checked by [`Filters::selection`].
#[derive(Clone, Debug, Default)]
pub struct Filters<'a> {
    pub types: Option<&'a str>,
    pub exclude_types: Option<&'a str>,
    pub tags: Option<&'a str>,
    pub include: Option<&'a str>,
    pub include_inactive: bool,
    pub dependencies: bool,
}

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Kind(#[from] UnknownKind),
    #[error(transparent)]
    Include(#[from] IncludeError),
}

impl Filters<'_> {
    pub fn selection(&self) -> Result<Selection, FilterError> {
        let list = |s: Option<&str>| -> Vec<String> {
            s.map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        Ok(Selection {
            types: self.types.map(Kind::parse_list).transpose()?,
            exclude_types: self
                .exclude_types
                .map(Kind::parse_list)
                .transpose()?
                .unwrap_or_default(),
            tags: list(self.tags),
            include: self.include.map(IncludeSpec::parse).transpose()?,
            picked: None,
            include_inactive: self.include_inactive,
            dependencies: self.dependencies,
        })
    }
}

/// What a selection kept and left out.
#[derive(Debug, Default)]
pub struct Selected {
    pub document: Document,
    pub skipped: usize,
    /// The kept entities the filters did not choose themselves: the dependencies the
    /// selection added (keys as in the document).
    pub added: BTreeSet<Key>,
}

/// Dependency edges of a document: server → tools, resources, prompts it links; a linked tool
/// the document lacks but whose name is `<gateway-slug>-…` → that peer gateway.
pub fn edges(e: &Entities) -> BTreeMap<Key, BTreeSet<Key>> {
    let mut out: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
    let tools: BTreeSet<String> = e.tools.iter().map(|t| slugify(&t.name)).collect();
    let gateways: Vec<(String, &str)> = e
        .gateways
        .iter()
        .map(|g| (format!("{}-", slugify(&g.name)), g.name.as_str()))
        .collect();
    for s in &e.servers {
        let deps = out.entry((Kind::Server, s.name.clone())).or_default();
        for t in &s.tool_ids {
            if tools.contains(&slugify(t)) {
                deps.insert((Kind::Tool, t.clone()));
            } else if let Some((_, g)) = gateways
                .iter()
                .filter(|(prefix, _)| t.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
            {
                deps.insert((Kind::Gateway, g.to_string()));
            }
        }
        deps.extend(s.resource_uris.iter().map(|u| (Kind::Resource, u.clone())));
        deps.extend(s.prompt_names.iter().map(|p| (Kind::Prompt, p.clone())));
    }
    out
}

/// Apply a selection to a document.
pub fn select(doc: &Document, sel: &Selection) -> Selected {
    let e = &doc.entities;
    let direct = chosen(e, sel);
    let direct_ids: BTreeSet<Key> = direct.iter().map(|(k, n)| (*k, identity(*k, n))).collect();
    let added_ids = if sel.dependencies {
        closure(e, &direct_ids, &sel.exclude_types)
    } else {
        BTreeSet::new()
    };
    // Filters keep every entity of a chosen identity (a name in any slug form); picked
    // entities are kept by their exact key.
    let keep = |kind: Kind, key: &str| {
        let id = (kind, identity(kind, key));
        direct.contains(&(kind, key.to_string()))
            || added_ids.contains(&id)
            || (sel.picked.is_none() && direct_ids.contains(&id))
    };
    fn filter<E: Entity + Clone>(v: &[E], keep: &impl Fn(Kind, &str) -> bool) -> Vec<E> {
        v.iter()
            .filter(|x| keep(E::KIND, x.key()))
            .cloned()
            .collect()
    }
    let entities = Entities {
        tools: filter(&e.tools, &keep),
        gateways: filter(&e.gateways, &keep),
        servers: filter(&e.servers, &keep),
        prompts: filter(&e.prompts, &keep),
        resources: filter(&e.resources, &keep),
        roots: filter(&e.roots, &keep),
        ..Entities::default()
    };
    let added = Kind::DISPLAY
        .iter()
        .flat_map(|k| entities.keys(*k).into_iter().map(move |n| (*k, n)))
        .filter(|(k, n)| {
            let id = (*k, identity(*k, n));
            added_ids.contains(&id) && !direct_ids.contains(&id)
        })
        .map(|(k, n)| (k, n.to_string()))
        .collect();
    let skipped = e.total() - entities.total();
    Selected {
        document: Document {
            entities,
            ..doc.clone()
        },
        skipped,
        added,
    }
}

/// The entities the filters choose themselves, by their exact keys.
fn chosen(e: &Entities, sel: &Selection) -> BTreeSet<Key> {
    let tags: BTreeSet<String> = sel
        .tags
        .iter()
        .map(|t| crate::core::document::tag::normalize(t))
        .collect();
    let kind_on = |k: Kind| {
        !sel.exclude_types.contains(&k) && sel.types.as_ref().is_none_or(|t| t.contains(&k))
    };
    let mut chosen: BTreeSet<Key> = BTreeSet::new();
    let mut consider =
        |kind: Kind, key: &str, item_tags: &[crate::core::document::Tag], active: bool| {
            let ok = kind_on(kind)
                && (sel.include_inactive || active)
                && sel
                    .include
                    .as_ref()
                    .is_none_or(|inc| inc.matches(kind, key))
                && sel
                    .picked
                    .as_ref()
                    .is_none_or(|p| p.contains(&(kind, key.to_string())))
                && (tags.is_empty() || item_tags.iter().any(|t| tags.contains(&t.normalized())));
            if ok {
                chosen.insert((kind, key.to_string()));
            }
        };
    fn each<E: Entity>(
        v: &[E],
        f: &mut impl FnMut(Kind, &str, &[crate::core::document::Tag], bool),
    ) {
        for x in v {
            f(E::KIND, x.key(), x.tags(), x.is_active());
        }
    }
    each(&e.tools, &mut consider);
    each(&e.gateways, &mut consider);
    each(&e.servers, &mut consider);
    each(&e.prompts, &mut consider);
    each(&e.resources, &mut consider);
    each(&e.roots, &mut consider);
    chosen
}

/// The identities the dependencies of `from` (identities) add, transitively, leaving out
/// excluded kinds and what `from` holds already.
fn closure(e: &Entities, from: &BTreeSet<Key>, exclude: &[Kind]) -> BTreeSet<Key> {
    let graph = edges(e);
    let mut added: BTreeSet<Key> = BTreeSet::new();
    let mut stack: Vec<Key> = from.iter().cloned().collect();
    while let Some(k) = stack.pop() {
        let Some(deps) = graph
            .iter()
            .find(|((kind, name), _)| *kind == k.0 && identity(*kind, name) == k.1)
            .map(|(_, d)| d)
        else {
            continue;
        };
        for (dk, dn) in deps {
            let id = (*dk, identity(*dk, dn));
            if !exclude.contains(dk) && !from.contains(&id) && added.insert(id.clone()) {
                stack.push(id);
            }
        }
    }
    added
}

fn identity(kind: Kind, key: &str) -> String {
    crate::core::document::validate::identity(kind, key)
}

#[cfg(test)]
mod tests;
