//! The one integration-test binary (one link of the crate instead of one per file). Each module
//! is one area of behaviour, tested against real ContextForge gateways started on loopback by
//! `tests/gateway/cf.sh` (see `common`), real Git repositories and real files.
//!
//! Run one area: `cargo test --test it import::`; the unit layer alone: `cargo test --lib`.

mod common;

mod api;
mod api_import_commit;
mod api_jobs;
mod content_cache;
mod daemon;
mod document;
mod env;
mod env_rules;
mod export;
mod faults;
mod fuzz;
mod git;
mod import;
mod interop;
mod interop_federated;
mod k8s_chart;
mod k8s_controller;
mod k8s_e2e;
mod k8s_examples;
mod kube_api;
mod limits;
mod secrets;
mod ui;
mod ui_export;
mod ui_import;
mod ui_import_commit;
mod ui_pages;
mod watch;
