//! The one vocabulary of what happens to an entity: planned (a plan's step, a diff, a change
//! between two documents) and done (an apply's outcome) use the same six words, and [`Counts`]
//! counts by them.

use serde::{Deserialize, Serialize};

/// What happens, or happened, to one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Create,
    Update,
    Delete,
    Unchanged,
    Skip,
    Fail,
}

impl Verb {
    /// The mark of a plan line or a commit message: `+`, `~`, `-`.
    pub fn mark(self) -> char {
        match self {
            Verb::Create => '+',
            Verb::Update => '~',
            Verb::Delete => '-',
            Verb::Unchanged | Verb::Skip => ' ',
            Verb::Fail => '!',
        }
    }
}

/// Entities counted by verb (a plan's, a cycle's or a run's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub skip: usize,
    /// Entities whose write failed (a run's counts only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fail: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Counts {
    /// Count `verbs`.
    pub fn of(verbs: impl IntoIterator<Item = Verb>) -> Counts {
        let mut c = Counts::default();
        for v in verbs {
            *c.slot(v) += 1;
        }
        c
    }

    fn slot(&mut self, v: Verb) -> &mut usize {
        match v {
            Verb::Create => &mut self.create,
            Verb::Update => &mut self.update,
            Verb::Delete => &mut self.delete,
            Verb::Unchanged => &mut self.unchanged,
            Verb::Skip => &mut self.skip,
            Verb::Fail => &mut self.fail,
        }
    }

    /// How many entities `verb` applies to.
    pub fn get(&self, v: Verb) -> usize {
        let mut c = *self;
        *c.slot(v)
    }

    /// Entities that change: created, updated or deleted.
    pub fn changes(&self) -> usize {
        self.create + self.update + self.delete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_verb() {
        let c = Counts::of([
            Verb::Create,
            Verb::Create,
            Verb::Update,
            Verb::Fail,
            Verb::Skip,
        ]);
        assert_eq!((c.create, c.update, c.fail, c.skip), (2, 1, 1, 1));
        assert_eq!(c.get(Verb::Create), 2);
        assert_eq!(c.changes(), 3);
        // A plan's counts (no failures) serialise as before.
        let plan = Counts::of([Verb::Create, Verb::Unchanged]);
        assert_eq!(
            serde_json::to_value(plan).unwrap(),
            serde_json::json!({"create": 1, "update": 0, "delete": 0, "unchanged": 1, "skip": 0})
        );
    }
}
