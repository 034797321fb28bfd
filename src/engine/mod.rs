//! The one engine every front door calls.

pub mod apply;
pub mod backup;
pub mod bulk;
pub mod connect;
pub mod content_cache;
pub mod environment;
pub mod envlock;
pub mod export;
pub mod git;
pub mod import;
pub mod import_commit;
pub mod jobs;
pub mod keycheck;
pub mod layers;
pub mod metrics;
pub mod promote;
pub mod reconcile;
pub mod restore;
pub mod rules;
pub mod saved_plan;
