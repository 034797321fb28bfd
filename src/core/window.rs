//! A sliding one-minute window: admits at most N events in any 60 seconds. The gateway
//! client's rate limiter and the webhook listener's limit both count with it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct SlidingWindow {
    per_minute: usize,
    seen: VecDeque<Instant>,
}

impl SlidingWindow {
    /// `per_minute == 0` admits everything.
    pub fn new(per_minute: usize) -> SlidingWindow {
        SlidingWindow {
            per_minute,
            seen: VecDeque::new(),
        }
    }

    pub fn per_minute(&self) -> usize {
        self.per_minute
    }

    /// Admit no more than `per_minute` from now on, if that is lower (0 = unlimited is never
    /// lower than a limit).
    pub fn lower_to(&mut self, per_minute: usize) {
        if per_minute > 0 && (self.per_minute == 0 || per_minute < self.per_minute) {
            self.per_minute = per_minute;
        }
    }

    /// Admit `per_minute` from now on, higher or lower (what was admitted in the last minute
    /// still counts).
    pub fn set_limit(&mut self, per_minute: usize) {
        self.per_minute = per_minute;
    }

    /// Forget what is older than a minute at `now`; whether anything is left.
    pub fn expire(&mut self, now: Instant) -> bool {
        while self
            .seen
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            self.seen.pop_front();
        }
        !self.seen.is_empty()
    }

    /// How long until an event would be admitted at `now` (None: it would be now), without
    /// counting one.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        if self.per_minute == 0 {
            return None;
        }
        self.expire(now);
        let oldest = *self.seen.front()?;
        (self.seen.len() >= self.per_minute)
            .then(|| MINUTE.saturating_sub(now.saturating_duration_since(oldest)))
    }

    /// Admit an event at `now`, or say how long until one would be admitted.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        self.expire(now);
        if self.seen.len() >= self.per_minute {
            let oldest = *self.seen.front().expect("non-empty");
            return Err(MINUTE.saturating_sub(now.saturating_duration_since(oldest)));
        }
        self.seen.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_n_per_minute_and_says_when_the_next_fits() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(2);
        assert!(w.admit(t0).is_ok());
        assert!(w.admit(t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            w.admit(t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(w.admit(t0 + Duration::from_secs(60)).is_ok());
        assert!(SlidingWindow::new(0).admit(t0).is_ok());
    }

    #[test]
    fn waiting_is_told_without_counting() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(1);
        assert_eq!(w.wait(t0), None);
        assert_eq!(w.wait(t0), None, "asking counts nothing");
        w.admit(t0).unwrap();
        assert_eq!(
            w.wait(t0 + Duration::from_secs(15)),
            Some(Duration::from_secs(45))
        );
        assert_eq!(w.wait(t0 + Duration::from_secs(60)), None);
    }
}
