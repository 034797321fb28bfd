//! The six entity kinds a ContextForge gateway holds, with their singular and plural names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the six kinds of configuration a gateway holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Root,
    Gateway,
    Tool,
    Resource,
    Prompt,
    Server,
}

impl Kind {
    /// Dependency order: what a later kind may refer to comes first (servers link to tools,
    /// resources and prompts; federated tools come from gateways).
    pub const ALL: [Kind; 6] = [
        Kind::Root,
        Kind::Gateway,
        Kind::Tool,
        Kind::Resource,
        Kind::Prompt,
        Kind::Server,
    ];

    /// Order used in summaries and in the document, as ContextForge writes it.
    pub const DISPLAY: [Kind; 6] = [
        Kind::Tool,
        Kind::Gateway,
        Kind::Server,
        Kind::Prompt,
        Kind::Resource,
        Kind::Root,
    ];

    pub fn singular(self) -> &'static str {
        match self {
            Kind::Root => "root",
            Kind::Gateway => "gateway",
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
            Kind::Server => "server",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Root => "roots",
            Kind::Gateway => "gateways",
            Kind::Tool => "tools",
            Kind::Resource => "resources",
            Kind::Prompt => "prompts",
            Kind::Server => "servers",
        }
    }

    /// The field that identifies an entity of this kind: `uri` for resources and roots, else
    /// `name`.
    pub fn key_field(self) -> &'static str {
        match self {
            Kind::Resource | Kind::Root => "uri",
            _ => "name",
        }
    }

    /// Whether the gateway stores this kind's names slugified (`My Tool` → `my-tool`).
    pub fn stores_slug(self) -> bool {
        matches!(self, Kind::Tool | Kind::Prompt | Kind::Gateway)
    }

    /// "1 tool", "3 tools".
    pub fn count(self, n: usize) -> String {
        if n == 1 {
            format!("1 {}", self.singular())
        } else {
            format!("{n} {}", self.plural())
        }
    }

    /// Parse a comma-separated list of kind names (singular or plural).
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, UnknownKind> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let k: Kind = part.parse()?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.singular())
    }
}

/// A name that is not one of the six kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown entity type '{0}' (expected one of: tools, gateways, servers, prompts, resources, roots)"
)]
pub struct UnknownKind(pub String);

impl Kind {
    /// The kind a mistyped plural name most likely meant: a singular (`tool`), another case
    /// (`Tools`), or a plural at most two edits away (`tols`, `promts`).
    pub fn suggest(name: &str) -> Option<Kind> {
        if let Ok(k) = name.parse::<Kind>() {
            return Some(k);
        }
        let lower = name.trim().to_ascii_lowercase();
        Kind::DISPLAY
            .into_iter()
            .map(|k| (edit_distance(&lower, k.plural()), k))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    }
}

/// Levenshtein distance over chars (short names only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.singular() == lower || k.plural() == lower)
            .ok_or_else(|| UnknownKind(s.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_singular_and_plural_names() {
        for (input, want) in [
            ("tool", Kind::Tool),
            ("tools", Kind::Tool),
            ("Servers", Kind::Server),
            (" root ", Kind::Root),
            ("gateway", Kind::Gateway),
            ("prompts", Kind::Prompt),
            ("resource", Kind::Resource),
        ] {
            assert_eq!(input.parse::<Kind>().unwrap(), want, "{input}");
        }
        assert_eq!(
            "widgets".parse::<Kind>().unwrap_err(),
            UnknownKind("widgets".into())
        );
    }

    #[test]
    fn parses_lists_without_duplicates() {
        assert_eq!(
            Kind::parse_list("tool,tools, server").unwrap(),
            vec![Kind::Tool, Kind::Server]
        );
        assert!(Kind::parse_list("tool,bogus").is_err());
    }

    #[test]
    fn suggests_the_plural_a_mistyped_name_meant() {
        assert_eq!(Kind::suggest("tool"), Some(Kind::Tool));
        assert_eq!(Kind::suggest("Servers"), Some(Kind::Server));
        assert_eq!(Kind::suggest("promts"), Some(Kind::Prompt));
        assert_eq!(Kind::suggest("resourcs"), Some(Kind::Resource));
        assert_eq!(Kind::suggest("a2a_agents"), None);
        assert_eq!(Kind::suggest("widgets"), None);
    }

    #[test]
    fn counts_read_naturally() {
        assert_eq!(Kind::Tool.count(1), "1 tool");
        assert_eq!(Kind::Tool.count(15), "15 tools");
    }
}
