//! The `mcp-gitops` binary: everything lives in the library; this only sets the exit code.

// Plans of thousands of entities are allocation-heavy; mimalloc halves their cost.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(mcp_gitops::cli::main())
}
