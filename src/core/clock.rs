//! Wall-clock time as the gateway writes it.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 UTC timestamp with microseconds, like ContextForge's.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as an RFC 3339 UTC timestamp with microseconds (`2023-11-14T22:13:20.123456Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, d.subsec_nanos()))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch (0 before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_has_microseconds_and_z() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), 27, "{now}");
        assert!(now_unix() > 1_700_000_000);
    }
}
