//! mcp-gitops: a GitOps reconciler and backup tool for the ContextForge MCP Gateway.
//!
//! The core is pure (`document`, `secrets`, `select`); the edges are thin (`gateway` talks
//! HTTP, `cli` parses flags). Every front door calls the same engine.

pub mod apply;
pub mod backup;
pub mod bulk;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod document;
pub mod envdir;
pub mod envlock;
pub mod export;
pub mod fsutil;
pub mod gateway;
pub mod git;
pub mod kind;
pub mod memory;
pub mod plan;
pub mod promote;
pub mod reconcile;
pub mod restore;
pub mod secrets;
pub mod select;
pub mod server;
pub mod watch;
