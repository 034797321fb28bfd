//! The policy words every front door shares: what to do on a conflict (`Strategy`), whether an
//! environment writes (`Mode`) and whether it deletes what it no longer declares (`Prune`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What to do with an entity that exists on the gateway and differs from the document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Write the fields that differ.
    #[default]
    Update,
    /// Leave it as it is.
    Skip,
    /// Create a copy named `<name>_imported_<unix-seconds>` (one-off imports only).
    Rename,
    /// Refuse the whole run before any write, listing every conflict.
    Fail,
}

impl Strategy {
    /// Every strategy's name, as flags and files spell it.
    pub const NAMES: [&'static str; 4] = ["update", "skip", "rename", "fail"];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Update => "update",
            Strategy::Skip => "skip",
            Strategy::Rename => "rename",
            Strategy::Fail => "fail",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown conflict strategy '{0}' (expected one of: update, skip, rename, fail)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Strategy::Update,
            Strategy::Skip,
            Strategy::Rename,
            Strategy::Fail,
        ]
        .into_iter()
        .find(|k| k.name() == s.trim().to_ascii_lowercase())
        .ok_or_else(|| UnknownStrategy(s.to_string()))
    }
}

/// `auto` applies; `observe` only reports drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Auto,
    Observe,
}

/// The prune policy: `prune: true`, or a table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "PruneRepr")]
pub struct Prune {
    pub enabled: bool,
    /// Marks what this environment owns (`mcp-gitops:<owner>` tag); default: the directory's
    /// name.
    pub owner: Option<String>,
    /// A plan deleting more than this share of the owned entities (or all of them) is refused
    /// unless `--allow-mass-delete`.
    pub max_delete_percent: u8,
}

/// The default mass-delete threshold, in percent of the owned entities.
pub const MAX_DELETE_PERCENT: u8 = 50;

impl Default for Prune {
    fn default() -> Self {
        Prune {
            enabled: false,
            owner: None,
            max_delete_percent: MAX_DELETE_PERCENT,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PruneRepr {
    Flag(bool),
    Table(PruneTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneTable {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    max_delete_percent: Option<u8>,
}

fn yes() -> bool {
    true
}

impl From<PruneRepr> for Prune {
    fn from(r: PruneRepr) -> Self {
        match r {
            PruneRepr::Flag(enabled) => Prune {
                enabled,
                ..Prune::default()
            },
            PruneRepr::Table(t) => Prune {
                enabled: t.enabled,
                owner: t.owner,
                max_delete_percent: t.max_delete_percent.unwrap_or(MAX_DELETE_PERCENT),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_by_name() {
        for n in Strategy::NAMES {
            assert_eq!(n.parse::<Strategy>().unwrap().name(), n);
        }
        assert!("merge".parse::<Strategy>().is_err());
    }
}
