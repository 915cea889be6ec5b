//! When classification may run: daily windows of local time (`[schedule] windows`, e.g.
//! `"01:00-07:00"`, a window may wrap midnight: `"22:00-06:00"`), and how long a piece of
//! work takes once only open time counts (honest ETAs for a scheduled daemon).
//!
//! May not: read the clock itself (callers pass the local time of day, see
//! [`local_time_of_day`]), or decide anything about the load (the engine's gate does).

use std::fmt;

use serde::{Deserialize, Deserializer};

/// Seconds in a day.
pub const DAY: u32 = 86_400;

/// One daily window, `[start, end)` in seconds since local midnight. `end` may be 86400
/// (`24:00`); `end < start` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

fn parse_time(t: &str, end: bool) -> Option<u32> {
    let parts: Vec<&str> = t.trim().split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap_or(99)).collect();
    let (h, m, s) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
    if end && h == 24 && m == 0 && s == 0 {
        return Some(DAY);
    }
    (h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

impl Window {
    /// Parses `HH:MM-HH:MM` (seconds allowed: `HH:MM:SS`; `24:00` as an end).
    pub fn parse(s: &str) -> Result<Window, String> {
        let bad = || {
            format!("`{s}` is not a time window: use \"HH:MM-HH:MM\" in local time, e.g. \"01:00-07:00\" or \"22:00-06:00\" (hours 00-23, minutes 00-59; 24:00 may end a window)")
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let start = parse_time(a, false).ok_or_else(bad)?;
        let end = parse_time(b, true).ok_or_else(bad)?;
        if start == end {
            return Err(format!(
                "`{s}` is an empty window (for always, leave `windows` empty)"
            ));
        }
        Ok(Window { start, end })
    }

    /// Whether second `t` of the day (0..86400) is inside.
    pub fn contains(&self, t: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&t)
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Seconds from `t` until the window next opens (0 when `t` is inside).
    fn opens_in(&self, t: u32) -> u32 {
        if self.contains(t) {
            0
        } else if self.start > t {
            self.start - t
        } else {
            DAY - t + self.start
        }
    }

    /// Seconds from `t` (inside) until it closes.
    fn closes_in(&self, t: u32) -> u32 {
        let end = self.end % DAY;
        if end > t {
            end - t
        } else {
            DAY - t + end
        }
    }
}

fn hhmm(t: u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{:02}:{:02}", t / 3600, (t / 60) % 60)?;
    if !t.is_multiple_of(60) {
        write!(f, ":{:02}", t % 60)?;
    }
    Ok(())
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hhmm(self.start, f)?;
        f.write_str("-")?;
        hhmm(self.end, f)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Window::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Daily windows; none means always open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub windows: Vec<Window>,
}

impl Schedule {
    pub fn new(windows: Vec<Window>) -> Self {
        Schedule { windows }
    }

    /// No windows: classification may always run.
    pub fn is_always(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether second `t` of the day is inside some window (always, without windows).
    pub fn is_open(&self, t: u32) -> bool {
        self.is_always() || self.windows.iter().any(|w| w.contains(t % DAY))
    }

    /// Seconds from `t` until some window opens: 0 when open now.
    pub fn opens_in(&self, t: u32) -> u32 {
        self.windows
            .iter()
            .map(|w| w.opens_in(t % DAY))
            .min()
            .unwrap_or(0)
    }

    /// Seconds from `t` until `work` seconds of open time have passed: the wall-clock time
    /// a job of that length takes when it runs only inside the windows.
    pub fn finish_in(&self, t: u32, work: f64) -> f64 {
        if self.is_always() || !work.is_finite() {
            return work;
        }
        let mut left = work.max(0.0);
        let mut t = t % DAY;
        let mut elapsed = 0.0;
        // Each turn skips to the next opening or uses one open stretch; a day has at most
        // 2 x windows such stretches, so whole days are skipped at once.
        let open_per_day: f64 = self.open_seconds_per_day();
        if open_per_day <= 0.0 {
            return f64::INFINITY;
        }
        let whole_days = (left / open_per_day).floor() - 1.0;
        if whole_days > 0.0 {
            elapsed += whole_days * DAY as f64;
            left -= whole_days * open_per_day;
        }
        for _ in 0..(4 * self.windows.len() + 8) {
            let wait = self.opens_in(t);
            if wait > 0 {
                elapsed += wait as f64;
                t = (t + wait) % DAY;
                continue;
            }
            let open = self.open_stretch(t) as f64;
            if left <= open {
                return elapsed + left;
            }
            left -= open;
            elapsed += open;
            t = (t + open as u32) % DAY;
        }
        elapsed + left / open_per_day * DAY as f64
    }

    /// Seconds from `t` (open) until every window holding it has closed, overlapping and
    /// adjoining windows merged.
    fn open_stretch(&self, t: u32) -> u32 {
        let mut until = 0;
        loop {
            let at = (t + until) % DAY;
            let next = self
                .windows
                .iter()
                .filter(|w| w.contains(at))
                .map(|w| w.closes_in(at))
                .max()
                .unwrap_or(0);
            if next == 0 || until >= DAY {
                return until.min(DAY);
            }
            until += next;
        }
    }

    /// Open seconds in a day (overlaps counted once).
    pub fn open_seconds_per_day(&self) -> f64 {
        if self.is_always() {
            return DAY as f64;
        }
        // Minute resolution is plenty for an estimate, and exact for whole-minute windows.
        let mut open = 0u32;
        let mut t = 0;
        while t < DAY {
            if self.is_open(t) {
                open += 60;
            }
            t += 60;
        }
        open as f64
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_always() {
            return f.write_str("always");
        }
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{w}")?;
        }
        Ok(())
    }
}

/// The local time of day (seconds since local midnight) at Unix time `unix`, in the
/// process's time zone (`TZ`, else `/etc/localtime`).
pub fn local_time_of_day(unix: i64) -> u32 {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into the struct it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return (unix.rem_euclid(DAY as i64)) as u32;
    }
    (tm.tm_hour as u32 * 3600 + tm.tm_min as u32 * 60 + tm.tm_sec as u32).min(DAY - 1)
}

/// The local time of day now.
pub fn local_now() -> u32 {
    local_time_of_day(crate::catalog::unix_now())
}

/// A duration for people: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`.
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "never (no open time in the windows)".into();
    }
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s.div_ceil(60)),
        3600..=86_399 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Window {
        Window::parse(s).unwrap()
    }

    #[test]
    fn windows_parse_and_refuse_nonsense() {
        assert_eq!(
            w("01:00-07:00"),
            Window {
                start: 3600,
                end: 7 * 3600
            }
        );
        assert_eq!(w("22:30-06:00").start, 22 * 3600 + 1800);
        assert_eq!(w("00:00-24:00").end, DAY);
        assert_eq!(w("12:00:30-12:01").start, 12 * 3600 + 30);
        for bad in [
            "25:00-26:00",
            "abc",
            "",
            "1:00-7:00",
            "01:00",
            "01:00-07:60",
            "24:00-01:00",
            "01:00-01:00",
            "01:00-07:00-08:00",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(w("22:00-06:00").to_string(), "22:00-06:00");
        assert_eq!(w("12:00:30-24:00").to_string(), "12:00:30-24:00");
    }

    #[test]
    fn open_and_wrapping_midnight() {
        let s = Schedule::new(vec![w("22:00-06:00")]);
        assert!(s.is_open(23 * 3600));
        assert!(s.is_open(3600));
        assert!(!s.is_open(6 * 3600));
        assert!(!s.is_open(12 * 3600));
        assert_eq!(s.opens_in(12 * 3600), 10 * 3600);
        assert_eq!(s.opens_in(23 * 3600), 0);
        assert!(Schedule::default().is_open(12 * 3600));
        let two = Schedule::new(vec![w("01:00-02:00"), w("13:00-14:00")]);
        assert_eq!(two.opens_in(3 * 3600), 10 * 3600);
        assert_eq!(two.opens_in(15 * 3600), 10 * 3600);
    }

    #[test]
    fn finishing_counts_only_open_time() {
        let s = Schedule::new(vec![w("01:00-07:00")]);
        // At noon, one hour of work: wait 13 h, then work 1 h.
        assert_eq!(s.finish_in(12 * 3600, 3600.0), 14.0 * 3600.0);
        // At 06:00, two hours of work: 1 h now, then 18 h closed, then 1 h.
        assert_eq!(s.finish_in(6 * 3600, 7200.0), 20.0 * 3600.0);
        // Ten days of open time (60 h): ten nights.
        let t = s.finish_in(12 * 3600, 60.0 * 3600.0);
        assert_eq!(t, (13.0 + 9.0 * 24.0 + 6.0) * 3600.0);
        // Overlapping windows are one stretch.
        let o = Schedule::new(vec![w("01:00-03:00"), w("02:00-04:00")]);
        assert_eq!(o.open_seconds_per_day(), 3.0 * 3600.0);
        assert_eq!(o.finish_in(3600, 3.0 * 3600.0), 3.0 * 3600.0);
        assert_eq!(Schedule::default().finish_in(5, 42.0), 42.0);
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(12.0), "12 s");
        assert_eq!(human_duration(61.0), "2 min");
        assert_eq!(human_duration(3.0 * 3600.0 + 300.0), "3 h 05 min");
        assert_eq!(human_duration(2.0 * 86_400.0 + 7200.0), "2 d 2 h");
    }
}
