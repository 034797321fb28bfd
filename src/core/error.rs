//! One classification of every error, so that the exit code, the metric label, the retry
//! decision and (for the controller) a condition's reason are decided in one place.

use serde::{Deserialize, Serialize};

/// What kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Bad input (a document, a flag, a setting): a person must fix it.
    Invalid,
    /// Refused for safety under `conflict_strategy: fail`: nothing was written.
    Conflict,
    /// A prune over the mass-delete limit: nothing was written.
    MassDelete,
    /// A saved plan no longer matches the environment or the gateway.
    Stale,
    /// `apply` of an environment in `observe` mode.
    Observe,
    /// Another process holds the environment's lock (past the wait): try again later.
    Locked,
    /// The gateway (or a repository) could not be reached.
    Unreachable,
    /// The gateway answered with a server error or rate limited us: worth retrying.
    GatewayBusy,
    /// The gateway refused the credentials (401, 403).
    Auth,
    /// The gateway refused a request (4xx), or some entities failed.
    Failed,
    /// A local file or directory could not be read or written.
    Io,
}

impl ErrorClass {
    /// The process exit code (README, "Exit codes").
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Failed | ErrorClass::GatewayBusy => 1,
            ErrorClass::Invalid | ErrorClass::Observe => 2,
            ErrorClass::Conflict
            | ErrorClass::MassDelete
            | ErrorClass::Stale
            | ErrorClass::Locked => 3,
            ErrorClass::Unreachable => 4,
            ErrorClass::Auth => 5,
            ErrorClass::Io => 6,
        }
    }

    /// A short, stable label: metrics, logs, `/status`.
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::Invalid => "invalid",
            ErrorClass::Conflict => "conflict",
            ErrorClass::MassDelete => "mass_delete",
            ErrorClass::Stale => "stale",
            ErrorClass::Observe => "observe",
            ErrorClass::Locked => "locked",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::GatewayBusy => "gateway_busy",
            ErrorClass::Auth => "auth",
            ErrorClass::Failed => "failed",
            ErrorClass::Io => "io",
        }
    }

    /// A condition reason (CamelCase, as Kubernetes conditions spell them).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorClass::Invalid => "InvalidDocument",
            ErrorClass::Conflict => "Conflict",
            ErrorClass::MassDelete => "PruneRefused",
            ErrorClass::Stale => "StalePlan",
            ErrorClass::Observe => "ObserveOnly",
            ErrorClass::Locked => "Locked",
            ErrorClass::Unreachable => "Unreachable",
            ErrorClass::GatewayBusy => "GatewayBusy",
            ErrorClass::Auth => "AuthFailed",
            ErrorClass::Failed => "ApplyFailed",
            ErrorClass::Io => "IoError",
        }
    }

    /// Worth retrying with backoff without anyone acting.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorClass::Unreachable | ErrorClass::GatewayBusy | ErrorClass::Locked
        )
    }

    /// A new revision failing this way is rejected: the last good state stays in force and the
    /// revision is not retried until the source changes.
    pub fn rejects_revision(self) -> bool {
        matches!(
            self,
            ErrorClass::Invalid | ErrorClass::Conflict | ErrorClass::MassDelete
        )
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// An error that knows its class.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorClass; 11] = [
        ErrorClass::Invalid,
        ErrorClass::Conflict,
        ErrorClass::MassDelete,
        ErrorClass::Stale,
        ErrorClass::Observe,
        ErrorClass::Locked,
        ErrorClass::Unreachable,
        ErrorClass::GatewayBusy,
        ErrorClass::Auth,
        ErrorClass::Failed,
        ErrorClass::Io,
    ];

    #[test]
    fn one_table_decides_codes_retries_and_rejections() {
        // (class, exit code, transient, rejects a revision)
        let table = [
            (ErrorClass::Invalid, 2, false, true),
            (ErrorClass::Conflict, 3, false, true),
            (ErrorClass::MassDelete, 3, false, true),
            (ErrorClass::Stale, 3, false, false),
            (ErrorClass::Observe, 2, false, false),
            (ErrorClass::Locked, 3, true, false),
            (ErrorClass::Unreachable, 4, true, false),
            (ErrorClass::GatewayBusy, 1, true, false),
            (ErrorClass::Auth, 5, false, false),
            (ErrorClass::Failed, 1, false, false),
            (ErrorClass::Io, 6, false, false),
        ];
        assert_eq!(table.len(), ALL.len());
        for (c, code, transient, rejects) in table {
            assert_eq!(c.exit_code(), code, "{c}");
            assert_eq!(c.is_transient(), transient, "{c}");
            assert_eq!(c.rejects_revision(), rejects, "{c}");
        }
    }

    #[test]
    fn labels_and_reasons_are_distinct() {
        let labels: std::collections::HashSet<_> = ALL.iter().map(|c| c.label()).collect();
        let reasons: std::collections::HashSet<_> = ALL.iter().map(|c| c.reason()).collect();
        assert_eq!(labels.len(), ALL.len());
        assert_eq!(reasons.len(), ALL.len());
        for c in ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.label()));
        }
    }
}
