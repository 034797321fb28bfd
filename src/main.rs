//! The `mcp-gitops` binary: everything lives in the library; this only sets the exit code.

// Plans of thousands of entities are allocation-heavy; mimalloc halves their cost.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's first arena is created by the first allocation, before `main`: its commit policy
// must be set from a constructor, which runs earlier (see `memory::lazy_commit`).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static LAZY_COMMIT: extern "C" fn() = {
    extern "C" fn lazy_commit() {
        mcp_gitops::memory::lazy_commit();
    }
    lazy_commit
};

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(mcp_gitops::cli::main())
}
