//! The saved form of a plan (`plan --out plan.json`), read back by `apply`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::error::{Classify, ErrorClass};
use crate::engine::reconcile::{Counts, Planned, Target};

/// The saved form of a plan (`plan --out plan.json`): where it applies, digests of both
/// sides, and the changes for people to read. No credential, no substituted value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub environment: PathBuf,
    pub gateway: String,
    pub created_at: String,
    pub desired_digest: String,
    pub live_digest: String,
    pub counts: Counts,
    pub changes: Vec<String>,
}

/// The `format` of a saved plan.
pub const PLAN_FORMAT: &str = "mcp-gitops-plan/1";

impl SavedPlan {
    pub fn new(t: &Target, p: &Planned, created_at: String) -> SavedPlan {
        let (desired_digest, live_digest) = t.digests(p);
        SavedPlan {
            format: PLAN_FORMAT.into(),
            environment: t
                .env
                .dir
                .canonicalize()
                .unwrap_or_else(|_| t.env.dir.clone()),
            gateway: t.env.config.gateway.clone(),
            created_at,
            desired_digest,
            live_digest,
            counts: p.counts(),
            changes: p.lines(false),
        }
    }

    /// Read a saved plan; `None` when `path` is not one (an environment directory, say).
    pub fn read(path: &Path) -> Option<Result<SavedPlan, PlanFileError>> {
        if !path.is_file() {
            return None;
        }
        let file = path.display().to_string();
        let text = match crate::core::document::read_text(path) {
            Ok((_, t)) => t,
            Err(e) => return Some(Err(PlanFileError::Load(e))),
        };
        Some(
            serde_json::from_str::<SavedPlan>(&text)
                .map_err(|e| PlanFileError::NotAPlan {
                    file: file.clone(),
                    reason: crate::core::quote::clean(&e.to_string(), false),
                })
                .and_then(|p| {
                    if p.format == PLAN_FORMAT {
                        Ok(p)
                    } else {
                        Err(PlanFileError::Format {
                            file,
                            format: crate::core::quote::quote(&p.format).to_string(),
                        })
                    }
                }),
        )
    }
}

/// A file given as a saved plan that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error(transparent)]
    Load(#[from] crate::core::document::LoadError),
    #[error("{file}: not a saved plan: {reason}")]
    NotAPlan { file: String, reason: String },
    #[error("{file}: plan format {format} is not {PLAN_FORMAT}")]
    Format { file: String, format: String },
}

impl Classify for PlanFileError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}
