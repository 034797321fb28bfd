//! Time for the daemon: cron schedules for backups (standard five fields, or six with seconds
//! first, and `@hourly`-style aliases; evaluated in UTC) and durations such as `90s` or `1h30m`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed cron schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| format!("'{text}' is not a cron schedule: {e}"))?;
        let s = Schedule {
            text: text.to_string(),
            cron,
        };
        // A pattern that never fires (Feb 30) is a mistake worth saying.
        if s.next_after(0).is_none() {
            return Err(format!("'{text}' never fires"));
        }
        Ok(s)
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing strictly after `unix` (seconds), in Unix seconds.
    pub fn next_after(&self, unix: i64) -> Option<i64> {
        let t: DateTime<Utc> = DateTime::from_timestamp(unix, 0)?;
        self.cron
            .find_next_occurrence(&t, false)
            .ok()
            .map(|n| n.timestamp())
    }
}

/// Parse `90s`, `5m`, `1h30m`, `500ms`, `2h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration (e.g. 30s, 5m, 1h30m)");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339 (UTC, seconds).
pub fn rfc3339(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-01T10:07:30Z
    const T: i64 = 1_796_119_650;

    #[test]
    fn cron_schedules_fire_when_they_say() {
        let cases = [
            ("*/15 * * * *", "2026-12-01T10:15:00Z"),
            ("0 * * * *", "2026-12-01T11:00:00Z"),
            ("@daily", "2026-12-02T00:00:00Z"),
            ("30 2 * * MON", "2026-12-07T02:30:00Z"),
            ("*/10 * * * * *", "2026-12-01T10:07:40Z"),
            ("0 0 1 1 *", "2027-01-01T00:00:00Z"),
        ];
        assert_eq!(rfc3339(T), "2026-12-01T10:07:30Z");
        for (pattern, next) in cases {
            let s = Schedule::parse(pattern).unwrap();
            assert_eq!(rfc3339(s.next_after(T).unwrap()), next, "{pattern}");
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        for bad in [
            "",
            "every hour",
            "61 * * * *",
            "* * * *",
            "0 0 30 2 *",
            "* * * * * * 2027",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("90", 90_000),
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1d", 86_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
        for bad in ["", "s", "5 minutes", "1.5h", "-3s", "3w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
