//! The pure core: no tokio, reqwest, git2, axum or clap.

pub mod access;
pub mod changes;
pub mod clock;
pub mod content_cache;
pub mod diff;
pub mod digest;
pub mod document;
pub mod error;
pub mod fsutil;
pub mod kind;
pub mod policy;
pub mod quote;
pub mod schedule;
pub mod secrets;
pub mod select;
pub mod verb;
pub mod webhook;
pub mod window;
