//! Cron schedules, pure (no tokio): parsing and the next firing, evaluated in UTC. Shared by
//! the daemon's backup schedules and the controller's `GatewayBackup`s.

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
    /// Standard five fields, or six with seconds first, and `@hourly`-style aliases (the
    /// daemon's `backup.schedule`).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        Self::build(text, Seconds::Optional)
    }

    /// Exactly five fields (minute, hour, day of month, month, day of week), as a
    /// `GatewayBackup`'s `spec.schedule` (its CRD's CEL rule checks the count too).
    pub fn parse_five_fields(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "'{text}' is not a cron schedule of 5 fields (minute hour day-of-month month day-of-week): it has {fields}"
            ));
        }
        Self::build(text, Seconds::Disallowed)
    }

    fn build(text: &str, seconds: Seconds) -> Result<Schedule, String> {
        let cron = CronParser::builder()
            .seconds(seconds)
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

/// Unix seconds as RFC 3339 (UTC, seconds): `2026-12-01T10:07:30Z`.
pub fn rfc3339(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// An RFC 3339 time as Unix seconds (None when it is not one).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
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
        assert_eq!(parse_rfc3339("2026-12-01T10:07:30Z"), Some(T));
        assert_eq!(parse_rfc3339("2026-12-01T10:07:30.5+00:00"), Some(T));
        assert_eq!(parse_rfc3339("yesterday"), None);
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
    fn five_fields_exactly_for_a_gateway_backup() {
        let s = Schedule::parse_five_fields("0 */6 * * *").unwrap();
        assert_eq!(rfc3339(s.next_after(T).unwrap()), "2026-12-01T12:00:00Z");
        let every = Schedule::parse_five_fields("* * * * *").unwrap();
        assert_eq!(every.next_after(T), Some(T + 30));
        for bad in [
            "@daily",
            "*/10 * * * * *",
            "* * * *",
            "61 * * * *",
            "0 0 30 2 *",
        ] {
            let e = Schedule::parse_five_fields(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
