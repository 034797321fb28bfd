//! Giving freed memory back to the operating system in long-running processes (`watch`,
//! `run`). Both allocators in the process keep what was freed for later: mimalloc (the Rust
//! allocator, the binary's choice) per thread, glibc's malloc (used by libgit2) per arena. A
//! daemon that observed a large gateway would hold that peak for good. After each cycle the
//! daemon asks for memory to be released; every runtime thread then returns its free pages
//! once, when it next goes idle.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// mimalloc v3's `mi_option_arena_eager_commit` (the bindings name no v3 constant).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// The commands that run until stopped.
pub fn long_running(command: &[u8]) -> bool {
    matches!(command, b"run" | b"watch" | b"controller")
}

/// Commit arena memory as it is used rather than up front (an idle daemon then holds only what
/// it uses, at some cost in speed). Must run before the first allocation: the binary calls it
/// from a constructor.
pub fn lazy_commit() {
    // SAFETY: mi_option_set only stores an option value; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
}

/// Ask every runtime thread to release its free memory when it next parks.
pub fn release_soon() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// For the runtime's `on_thread_park`: release this thread's free memory once per request.
pub fn on_park() {
    let now = EPOCH.load(Ordering::Relaxed);
    if SEEN.get() == now {
        return;
    }
    SEEN.set(now);
    // SAFETY: mi_collect has no preconditions; it frees only memory no longer in use.
    unsafe { libmimalloc_sys::mi_collect(true) }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_long_running_commands_commit_lazily() {
        for c in ["run", "watch"] {
            assert!(long_running(c.as_bytes()), "{c}");
        }
        for c in ["plan", "apply", "export", "import", "--help", "runs", ""] {
            assert!(!long_running(c.as_bytes()), "{c}");
        }
    }
}
