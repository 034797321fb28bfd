//! The `mcp-gitops` binary: everything lives in the library; this only sets the exit code.

// Plans of thousands of entities are allocation-heavy; mimalloc halves their cost.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The long-running commands (`run`, `watch`) commit allocator memory lazily, so that an idle
// daemon holds only what it uses; the short ones keep mimalloc's faster eager commit. The
// first arena is created by the first allocation, before `main`, so this is decided in an ELF
// constructor, to which glibc passes main's arguments.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static LAZY_COMMIT: extern "C" fn(i32, *const *const std::ffi::c_char) = {
    extern "C" fn choose(argc: i32, argv: *const *const std::ffi::c_char) {
        if argc < 2 || argv.is_null() {
            return;
        }
        // SAFETY: glibc calls constructors with main's argc and argv: argv[1] exists and is a
        // NUL-terminated string.
        let command = unsafe { std::ffi::CStr::from_ptr(*argv.add(1)) };
        if mcp_gitops::memory::long_running(command.to_bytes()) {
            mcp_gitops::memory::lazy_commit();
        }
    }
    choose
};

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(mcp_gitops::cli::main())
}
