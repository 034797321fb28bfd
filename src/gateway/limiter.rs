//! The client-side rate limit every request to a gateway passes: a sliding one-minute window
//! per gateway URL and process, and a pause for everyone once the gateway answers 429.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::core::window::SlidingWindow;

/// Whose request it is. Background requests (a periodic drift check with nothing known to have
/// changed) leave a fifth of the minute's budget to foreground ones (an edit to apply), so that
/// many drift checks at short intervals, which the budget throttles, never delay an edit by
/// more than its own few requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Foreground,
    Background,
}

impl Priority {
    /// The most requests of a minute this priority may take of `per_minute` (0 = all).
    fn cap(self, per_minute: usize) -> usize {
        match self {
            Priority::Foreground => per_minute,
            Priority::Background if per_minute < 2 => per_minute,
            Priority::Background => per_minute - (per_minute / 5).max(1),
        }
    }
}

/// A client-side rate limit: a sliding one-minute window, shared by every client that talks to
/// one gateway (see [`Limiter::for_gateway`]).
pub struct Limiter {
    window: Mutex<SlidingWindow>,
    /// After a 429, no request is sent before this (every client sharing the limiter waits).
    paused_until: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

impl Limiter {
    /// `per_minute == 0` means unlimited.
    pub fn new(per_minute: usize) -> Self {
        Limiter {
            window: Mutex::new(SlidingWindow::new(per_minute)),
            paused_until: std::sync::Mutex::new(None),
        }
    }

    /// The gateway answered 429: hold every request that shares this limiter for `d` (or
    /// longer, when an earlier pause ends later). Each further 429 counts as a violation
    /// towards the gateway's lockout, so one throttled request stops the others too.
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut p = self.paused_until.lock().expect("limiter pause");
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    /// How long requests are still held by [`Limiter::pause`].
    pub fn paused_for(&self) -> Option<Duration> {
        let p = *self.paused_until.lock().expect("limiter pause");
        p.and_then(|until| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// The one limiter of this process for the gateway at `url`: every client, of every
    /// environment, that talks to one gateway shares it, so that together they stay under the
    /// gateway's limit and never reach its 15-minute lockout. It admits the lowest rate any of
    /// them asked for.
    pub fn for_gateway(url: &str, per_minute: usize) -> Arc<Limiter> {
        type Registry = Vec<(String, std::sync::Weak<Limiter>)>;
        static ALL: std::sync::Mutex<Registry> = std::sync::Mutex::new(Vec::new());
        let key = url.trim_end_matches('/').to_ascii_lowercase();
        let mut all = ALL.lock().expect("limiter registry");
        all.retain(|(_, w)| w.strong_count() > 0);
        if let Some(l) = all
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, w)| w.upgrade())
        {
            if let Ok(mut w) = l.window.try_lock() {
                w.lower_to(per_minute);
            }
            return l;
        }
        let l = Arc::new(Limiter::new(per_minute));
        all.push((key, Arc::downgrade(&l)));
        l
    }

    /// Admit `per_minute` from now on, higher or lower than before; the last minute's
    /// requests still count. For an owner that holds a gateway's limiter for good and is told
    /// its budget again and again (the controller: a `ContextForgeGateway`'s
    /// `requestsPerMinute`, which may be edited).
    pub async fn set_rate(&self, per_minute: usize) {
        self.window.lock().await.set_limit(per_minute);
    }

    pub async fn acquire(&self) -> Instant {
        self.acquire_as(Priority::Foreground).await
    }

    /// Wait until a request of `priority` may be sent, and count it: the instant it was
    /// admitted, for [`Limiter::answered`].
    pub async fn acquire_as(&self, priority: Priority) -> Instant {
        while let Some(d) = self.paused_for() {
            tracing::debug!(?d, "the gateway throttled a request; holding this one");
            tokio::time::sleep(d).await;
        }
        loop {
            let wait = {
                let mut w = self.window.lock().await;
                let cap = priority.cap(w.per_minute());
                let now = Instant::now();
                match w.admit_within(now.into_std(), cap) {
                    Ok(()) => return now,
                    Err(wait) => wait,
                }
            };
            tracing::debug!(?wait, ?priority, "client-side rate limit reached; waiting");
            tokio::time::sleep(wait).await;
        }
    }

    /// The request admitted at `admitted` was answered: it counts from now, for a minute.
    /// The gateway counts a request when it handles it, which may be long after it was sent
    /// when requests queue; counting each until a minute after its answer keeps what the
    /// gateway sees in any minute under the limit too.
    pub async fn answered(&self, admitted: Instant) {
        let mut w = self.window.lock().await;
        w.ended(admitted.into_std(), Instant::now().into_std());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_limiter_per_gateway_url_keeps_the_lowest_rate() {
        let a = Limiter::for_gateway("http://127.0.0.1:1/", 450);
        let b = Limiter::for_gateway("HTTP://127.0.0.1:1", 2);
        let other = Limiter::for_gateway("http://127.0.0.1:2", 450);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        // Shared at the lower rate: two requests pass at once, the third waits a minute.
        let start = Instant::now();
        a.acquire().await;
        b.acquire().await;
        assert!(start.elapsed() < Duration::from_secs(1));
        a.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(59));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_holds_the_window() {
        let l = Limiter::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            l.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        l.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_every_request_sharing_the_limiter_until_the_longest_pause_ends() {
        let l = Arc::new(Limiter::new(0));
        let start = Instant::now();
        l.acquire().await;
        assert!(start.elapsed() < Duration::from_millis(1), "no pause yet");
        l.pause(Duration::from_secs(5));
        // A shorter pause asked for later does not cut the first one short.
        l.pause(Duration::from_secs(1));
        let other = l.clone();
        let waiter = tokio::spawn(async move {
            other.acquire().await;
            Instant::now()
        });
        l.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(waiter.await.unwrap() - start >= Duration::from_secs(5));
        assert_eq!(l.paused_for(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn background_requests_leave_a_fifth_of_the_budget_to_foreground_ones() {
        let l = Limiter::new(10);
        let start = Instant::now();
        for _ in 0..8 {
            l.acquire_as(Priority::Background).await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        // The ninth background request waits for the minute; a foreground one meanwhile
        // passes at once, twice.
        let bg = {
            let l = Arc::new(l);
            let waiting = l.clone();
            let h = tokio::spawn(async move {
                waiting.acquire_as(Priority::Background).await;
                Instant::now()
            });
            tokio::task::yield_now().await;
            l.acquire().await;
            l.acquire().await;
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "foreground waited"
            );
            h.await.unwrap()
        };
        assert!(bg.duration_since(start) >= Duration::from_secs(59));
        assert_eq!(Priority::Background.cap(1), 1);
        assert_eq!(Priority::Background.cap(450), 360);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counts_until_a_minute_after_its_answer() {
        let l = Limiter::new(1);
        let start = Instant::now();
        let sent = l.acquire().await;
        // Answered 20 s later (it queued at the gateway): the next waits until 80 s.
        tokio::time::sleep(Duration::from_secs(20)).await;
        l.answered(sent).await;
        l.acquire().await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(80) && waited < Duration::from_secs(81),
            "{waited:?}"
        );
    }
}
