//! Measured throughput for honest ETAs: images per second of *working* time over the last
//! minutes. Time spent idle (nothing to do, outside the windows, paused for load) is not
//! counted, so a daemon that classified a burst an hour ago still knows its speed, and a
//! model load inside a span is (it is part of what the work costs).
//!
//! May not: read the clock (callers pass `Instant`s) or know what is being counted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One stretch of work: from `start` to `end` (open while working), `done` items in it.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: Instant,
    end: Option<Instant>,
    done: u64,
}

/// Items per second over the working time of the last `window`.
#[derive(Debug, Clone)]
pub struct Rate {
    window: Duration,
    spans: VecDeque<Span>,
    /// The last rate measured, kept through idle time.
    last: Option<f64>,
}

/// Less working time than this gives no rate yet (the first batch and a model load would
/// otherwise make wild figures).
const MIN_BUSY: Duration = Duration::from_secs(3);

impl Rate {
    /// Measures over the last `window` of time.
    pub fn new(window: Duration) -> Self {
        Rate {
            window,
            spans: VecDeque::new(),
            last: None,
        }
    }

    /// Work starts (a no-op while already working).
    pub fn start(&mut self, now: Instant) {
        if self.spans.back().is_none_or(|s| s.end.is_some()) {
            self.spans.push_back(Span {
                start: now,
                end: None,
                done: 0,
            });
        }
    }

    /// `n` more items done (starts a span when none is open).
    pub fn add(&mut self, now: Instant, n: u64) {
        self.start(now);
        if let Some(s) = self.spans.back_mut() {
            s.done += n;
        }
    }

    /// Work stops: idle time from now on does not count.
    pub fn stop(&mut self, now: Instant) {
        if let Some(s) = self.spans.back_mut() {
            if s.end.is_none() {
                s.end = Some(now);
            }
        }
    }

    /// Items per second of working time in the last window, or the last such figure when
    /// too little work was seen lately; `None` before any was measured.
    pub fn per_second(&mut self, now: Instant) -> Option<f64> {
        let from = now.checked_sub(self.window).unwrap_or(now);
        while self
            .spans
            .front()
            .is_some_and(|s| s.end.is_some_and(|e| e <= from))
        {
            self.spans.pop_front();
        }
        let (mut busy, mut done) = (0.0f64, 0.0f64);
        for s in &self.spans {
            let end = s.end.unwrap_or(now);
            let whole = end.saturating_duration_since(s.start).as_secs_f64();
            let inside = end
                .saturating_duration_since(s.start.max(from))
                .as_secs_f64();
            busy += inside;
            // A span reaching back before the window counts its share of items.
            done += if whole > 0.0 {
                s.done as f64 * inside / whole
            } else {
                s.done as f64
            };
        }
        if busy >= MIN_BUSY.as_secs_f64() && done > 0.0 {
            self.last = Some(done / busy);
        }
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_does_not_count_and_the_last_rate_is_kept() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut r = Rate::new(Duration::from_secs(300));
        assert_eq!(r.per_second(s(0)), None);
        r.start(s(0));
        r.add(s(1), 5);
        assert_eq!(r.per_second(s(1)), None, "too little work seen");
        r.add(s(10), 15);
        r.stop(s(10));
        assert_eq!(r.per_second(s(10)), Some(2.0));
        // An hour idle: the rate is remembered, not diluted.
        assert_eq!(r.per_second(s(3600)), Some(2.0));
        // New work at another speed replaces it once measured.
        r.start(s(3600));
        r.add(s(3610), 50);
        assert_eq!(r.per_second(s(3610)), Some(5.0));
    }

    #[test]
    fn a_long_span_counts_only_its_recent_share() {
        let t0 = Instant::now();
        let mut r = Rate::new(Duration::from_secs(60));
        r.start(t0);
        r.add(t0 + Duration::from_secs(120), 240);
        let v = r.per_second(t0 + Duration::from_secs(120)).unwrap();
        assert!((v - 2.0).abs() < 1e-9, "{v}");
    }
}
