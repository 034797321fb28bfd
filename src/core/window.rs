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

    /// An event admitted at `admitted` ended at `now` (a request's response arrived): it counts
    /// from `now` instead, for another minute. A server that counts requests when it handles
    /// them, not when they were sent, then never sees more than the limit in a minute, however
    /// long they queued (each is counted from its sending to a minute after its answer, which
    /// covers whenever the server handled it). `now` is no earlier than anything admitted.
    pub fn ended(&mut self, admitted: Instant, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        if let Some(i) = self.seen.iter().rposition(|t| *t == admitted) {
            self.seen.remove(i);
        }
        self.seen.push_back(now);
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
        self.admit_within(now, self.per_minute)
    }

    /// Admit an event at `now` if fewer than `cap` (at most the limit) were admitted in the
    /// last minute, or say how long until one would be: a caller below the limit leaves the
    /// rest of the minute's budget to others (0 = the limit).
    pub fn admit_within(&mut self, now: Instant, cap: usize) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let cap = if cap == 0 {
            self.per_minute
        } else {
            cap.min(self.per_minute)
        };
        self.expire(now);
        if self.seen.len() >= cap {
            // Fewer than `cap` are left once this one is a minute old.
            let first = self.seen[self.seen.len() - cap];
            return Err(MINUTE.saturating_sub(now.saturating_duration_since(first)));
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

    #[test]
    fn a_lower_cap_leaves_the_rest_and_waits_until_it_is_under() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = SlidingWindow::new(4);
        w.admit_within(t0, 2).unwrap();
        w.admit_within(t0 + s(10), 2).unwrap();
        // Capped at 2: under it again when the first is a minute old.
        assert_eq!(w.admit_within(t0 + s(20), 2), Err(s(40)));
        // The full limit still admits two more.
        w.admit(t0 + s(20)).unwrap();
        w.admit(t0 + s(30)).unwrap();
        assert_eq!(w.admit(t0 + s(30)), Err(s(30)));
        // Four in the window, cap 2: under it when the third (t0+20) is a minute old.
        assert_eq!(w.admit_within(t0 + s(40), 2), Err(s(40)));
        assert!(w.admit_within(t0 + s(80), 2).is_ok());
    }

    #[test]
    fn a_lowered_limit_waits_until_the_window_is_under_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = SlidingWindow::new(3);
        for k in 0..3 {
            w.admit(t0 + s(k * 10)).unwrap();
        }
        w.set_limit(1);
        // Three sent; under one only once the last (t0+20) is a minute old.
        assert_eq!(w.admit(t0 + s(30)), Err(s(50)));
    }

    #[test]
    fn an_ended_event_counts_from_its_end() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = SlidingWindow::new(2);
        w.admit(t0).unwrap();
        w.admit(t0 + s(5)).unwrap();
        // The first was answered 30 s after it was sent: it counts until t0 + 90.
        w.ended(t0, t0 + s(30));
        assert_eq!(
            w.admit(t0 + s(60)),
            Err(s(5)),
            "the second one expires first"
        );
        assert!(w.admit(t0 + s(65)).is_ok());
        assert_eq!(w.admit(t0 + s(66)), Err(s(24)));
        assert!(w.admit(t0 + s(90)).is_ok());
        // Unlimited: nothing is kept.
        let mut u = SlidingWindow::new(0);
        u.ended(t0, t0 + s(1));
        assert!(u.seen.is_empty());
    }
}
