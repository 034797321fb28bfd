//! mcp-gitops: a GitOps reconciler and backup tool for the ContextForge MCP Gateway.
//!
//! One engine in layers; each uses only the layers below it:
//!
//! ```text
//! front doors   cli · daemon · http · k8s  parse, call the engine, render
//! engine        apply, reconcile, ...      the one orchestration
//! gateway       Gateway trait, Client      ContextForge's REST paths and bodies
//! core          document, diff, kind, ...  pure
//! ```
//!
//! Among the front doors, `http` serves what `daemon` hands it (never the other way round).

/// Front door: the command line.
pub mod cli;
/// Pure: the per-kind table, the document (model, load, validate, schema, selection), the diff,
/// document-to-document changes, secrets, policy types, the clock. No async, HTTP, Git or CLI.
pub mod core;
/// Front door: the long-running reconciler (`run`, `watch`) and its pure loop rules' driver.
pub mod daemon;
/// The one orchestration every front door calls: observe, prepare, execute, prune, report;
/// environments, export, backup, restore, promote, bulk tools, Git.
pub mod engine;
/// The only code that knows ContextForge's REST paths and bodies, behind typed operations.
pub mod gateway;
/// Front door: the HTTP listener (webhooks, health, status, metrics).
pub mod http;
/// Front door: Kubernetes custom resources and their controller.
pub mod k8s;
/// The allocator's settings: the crate's only `unsafe`.
pub mod memory;
