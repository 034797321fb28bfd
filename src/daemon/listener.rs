//! `daemon.yaml`'s `listener`: how many connections the HTTP listener holds at once and how long
//! it waits for a request's head, its body, or any byte at all. The connection cap is kept below
//! the process's open-file limit (`RLIMIT_NOFILE`, read at start) with a reserve of descriptors
//! for what the daemon itself opens: gateway connections, Git packs and checkouts, the state
//! file and its temporary copy, the lock, directory watches.

use std::time::Duration;

use serde::Deserialize;

use super::config::RawDuration;
use super::schedule::parse_duration;

/// Connections held at once unless `listener.max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The complete request head must arrive within this.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A webhook body must arrive within this.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection on which no byte moved for this long, with no request being handled, is closed:
/// a kept-alive connection between requests, a client that stopped reading its response.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Descriptors never given to connections: the daemon's own files, sockets and pipes.
pub const RESERVE_BASE: u64 = 64;
/// Descriptors kept per environment: its gateway connections (parallelism), Git packs and
/// checkouts, its backup.
pub const RESERVE_PER_ENV: u64 = 32;
/// The cap never goes below this, however low the file limit.
pub const MIN_CONNECTIONS: usize = 4;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    #[serde(default)]
    max_connections: Option<usize>,
    #[serde(default)]
    header_timeout: Option<RawDuration>,
    #[serde(default)]
    body_timeout: Option<RawDuration>,
    #[serde(default)]
    idle_timeout: Option<RawDuration>,
}

/// The checked `listener` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for ListenerSpec {
    fn default() -> Self {
        ListenerSpec {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Check `listener`; problems go to `problem(pointer, reason)`.
pub(super) fn check(raw: RawListener, problem: &mut dyn FnMut(String, String)) -> ListenerSpec {
    let d = ListenerSpec::default();
    let mut duration = |v: Option<RawDuration>, key: &str, default: Duration| {
        let at = format!("/listener/{key}");
        let t = match v {
            None => return default,
            Some(RawDuration::Seconds(s)) => Duration::from_secs(s),
            Some(RawDuration::Text(t)) => match parse_duration(&t) {
                Ok(t) => t,
                Err(why) => {
                    problem(at, why);
                    return default;
                }
            },
        };
        if t < Duration::from_secs(1) {
            problem(at, "must be at least 1s".into());
        }
        t
    };
    let spec = ListenerSpec {
        max_connections: raw.max_connections.unwrap_or(d.max_connections),
        header_timeout: duration(raw.header_timeout, "header_timeout", d.header_timeout),
        body_timeout: duration(raw.body_timeout, "body_timeout", d.body_timeout),
        idle_timeout: duration(raw.idle_timeout, "idle_timeout", d.idle_timeout),
    };
    if spec.max_connections == 0 {
        problem(
            "/listener/max_connections".into(),
            "must be at least 1".into(),
        );
    }
    spec
}

/// How many connections the listener holds, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub connections: usize,
    /// The soft `RLIMIT_NOFILE` (None: unlimited or unreadable).
    pub file_limit: Option<u64>,
    /// Descriptors kept for the daemon's own work.
    pub reserve: u64,
}

impl Cap {
    /// `max_connections`, lowered so that `environments`' reserve stays free under `file_limit`.
    pub fn new(max_connections: usize, file_limit: Option<u64>, environments: usize) -> Cap {
        let reserve = RESERVE_BASE + RESERVE_PER_ENV * environments as u64;
        let room = file_limit.map_or(usize::MAX, |l| {
            usize::try_from(l.saturating_sub(reserve)).unwrap_or(usize::MAX)
        });
        Cap {
            connections: max_connections.min(room).max(MIN_CONNECTIONS),
            file_limit,
            reserve,
        }
    }

    /// One line for the log.
    pub fn describe(&self, spec: &ListenerSpec) -> String {
        let limit = match self.file_limit {
            Some(l) => format!(
                "file limit {l}, {} kept for reconciles, backups and state",
                self.reserve
            ),
            None => "no file limit".to_string(),
        };
        format!(
            "up to {} connections ({limit}); header timeout {}s, body timeout {}s, idle timeout {}s",
            self.connections,
            spec.header_timeout.as_secs(),
            spec.body_timeout.as_secs(),
            spec.idle_timeout.as_secs()
        )
    }
}

/// The process's soft open-file limit.
pub fn file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    // rlim_t is not u64 on every target.
    #[allow(clippy::unnecessary_cast)]
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_under_the_file_limit() {
        // 300 files, 3 environments: 64 + 3 x 32 = 160 kept, 140 for connections.
        let c = Cap::new(256, Some(300), 3);
        assert_eq!((c.connections, c.reserve), (140, 160));
        assert!(c.connections as u64 + c.reserve <= 300);
        // A high limit: the configured maximum.
        assert_eq!(Cap::new(256, Some(1_048_576), 3).connections, 256);
        assert_eq!(Cap::new(50, None, 1).connections, 50);
        // A limit below the reserve: still a few connections, for /healthz.
        assert_eq!(Cap::new(256, Some(100), 2).connections, MIN_CONNECTIONS);
        let line = Cap::new(256, Some(200), 1).describe(&ListenerSpec::default());
        assert_eq!(
            line,
            "up to 104 connections (file limit 200, 96 kept for reconciles, backups and state); header timeout 10s, body timeout 30s, idle timeout 5s"
        );
    }

    #[test]
    fn settings_are_checked() {
        let mut problems = Vec::new();
        let raw: RawListener = serde_json::from_str(
            r#"{"max_connections": 0, "header_timeout": "soon", "body_timeout": 0, "idle_timeout": "2m"}"#,
        )
        .unwrap();
        let spec = check(raw, &mut |at, why| problems.push(format!("{at}: {why}")));
        assert_eq!(spec.idle_timeout, Duration::from_secs(120));
        assert_eq!(
            problems,
            [
                "/listener/header_timeout: 'soon' is not a duration (e.g. 30s, 5m, 1h30m)",
                "/listener/body_timeout: must be at least 1s",
                "/listener/max_connections: must be at least 1",
            ]
        );
        let mut none = Vec::new();
        let spec = check(RawListener::default(), &mut |at, why| none.push((at, why)));
        assert!(none.is_empty());
        assert_eq!(spec, ListenerSpec::default());
    }
}
