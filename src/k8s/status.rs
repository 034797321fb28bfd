//! Status in kstatus style, pure: conditions whose `lastTransitionTime` moves only when their
//! status flips, and the comparison that decides whether a status write is needed at all.

use super::crd::Condition;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const DRIFTED: &str = "Drifted";

/// `True` / `False`.
pub fn truth(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A condition's new value, before its times are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Want {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Want {
        Want {
            type_,
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// What changed in a set of conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flips {
    /// (type, new status, reason) of every condition whose status changed or that is new.
    pub flipped: Vec<(String, String, String)>,
}

/// The conditions `wants` describe, keeping each existing condition's `lastTransitionTime`
/// unless its status flips (then `now`). Conditions not wanted are dropped; order follows
/// `wants`.
pub fn settle(
    old: &[Condition],
    wants: &[Want],
    now: &str,
    generation: Option<i64>,
) -> (Vec<Condition>, Flips) {
    let mut flips = Flips::default();
    let out = wants
        .iter()
        .map(|w| {
            let status = truth(w.status).to_string();
            let prev = old.iter().find(|c| c.type_ == w.type_);
            let time = match prev {
                Some(p) if p.status == status => p.last_transition_time.clone(),
                _ => {
                    flips
                        .flipped
                        .push((w.type_.to_string(), status.clone(), w.reason.clone()));
                    now.to_string()
                }
            };
            Condition {
                type_: w.type_.to_string(),
                status,
                reason: w.reason.clone(),
                message: crate::core::quote::clean(&w.message, false)
                    .chars()
                    .take(2000)
                    .collect(),
                last_transition_time: time,
                observed_generation: generation,
            }
        })
        .collect();
    (out, flips)
}

/// The kstatus trio for an outcome: `Ready`, `Reconciling` (false once settled) and `Stalled`
/// (true when a human must act).
pub fn outcome(ready: Result<(&str, String), (&str, String, bool)>) -> Vec<Want> {
    match ready {
        Ok((reason, message)) => vec![
            Want::new(READY, true, reason, message),
            Want::new(RECONCILING, false, reason, ""),
            Want::new(STALLED, false, reason, ""),
        ],
        Err((reason, message, stalled)) => vec![
            Want::new(READY, false, reason, message.clone()),
            Want::new(
                RECONCILING,
                !stalled,
                if stalled { reason } else { "Retrying" },
                if stalled {
                    String::new()
                } else {
                    message.clone()
                },
            ),
            Want::new(
                STALLED,
                stalled,
                reason,
                if stalled { message } else { String::new() },
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let wants = outcome(Ok(("Applied", "3 unchanged".into())));
        let (first, flips) = settle(&[], &wants, "t1", Some(1));
        assert_eq!(flips.flipped.len(), 3);
        assert!(first.iter().all(|c| c.last_transition_time == "t1"));
        // Same statuses, another message and reason: no flip, time kept.
        let wants = outcome(Ok(("Applied", "1 update".into())));
        let (second, flips) = settle(&first, &wants, "t2", Some(2));
        assert!(flips.flipped.is_empty());
        assert!(second.iter().all(|c| c.last_transition_time == "t1"));
        assert_eq!(second[0].message, "1 update");
        assert_eq!(second[0].observed_generation, Some(2));
        // Ready flips to False (stalled): Ready and Stalled move, Reconciling stays False.
        let wants = outcome(Err(("InvalidDocument", "x.json: /entities".into(), true)));
        let (third, flips) = settle(&second, &wants, "t3", Some(2));
        let types: Vec<_> = flips.flipped.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(types, ["Ready", "Stalled"]);
        assert_eq!(third[1].last_transition_time, "t1");
        assert_eq!(third[2].status, "True");
        assert_eq!(third[2].message, "x.json: /entities");
    }

    #[test]
    fn a_transient_failure_is_reconciling_not_stalled() {
        let w = outcome(Err(("Unreachable", "connection refused".into(), false)));
        assert_eq!(
            (w[0].status, w[1].status, w[2].status),
            (false, true, false)
        );
        assert_eq!(w[1].message, "connection refused");
    }
}
