//! The dates of `--since` and `--until`: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or
//! `YYYY-MM-DDTHH:MM:SS` (a space may replace the `T`), in UTC unless followed by `Z` or
//! an offset (`+02:00`, `-0500`). Each names a period (that day, minute or second):
//! `--since` starts at its beginning and `--until` takes it whole, so
//! `--since 2024-06-01 --until 2024-06-30` is all of June.
//!
//! May not: read the clock or the time zone of the machine (results must not depend on it).

/// A period of time, as Unix nanoseconds `[start_ns, end_ns)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub start_ns: i64,
    pub end_ns: i64,
}

const NS: i64 = 1_000_000_000;

/// Parses a date or date and time (see the module documentation).
pub fn parse_moment(s: &str) -> Result<Moment, String> {
    let bad = || {
        format!("`{s}` is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC, or add Z or +HH:MM)")
    };
    let s = s.trim();
    let (date, rest) = split(s, 10).ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d.as_slice() else {
        return Err(bad());
    };
    let num = |t: &str, len: usize| -> Result<i64, String> {
        if t.len() == len && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, m, day) = (num(y, 4)?, num(m, 2)?, num(day, 2)?);
    if !(1..=12).contains(&m) || day < 1 || day > days_in_month(y, m) {
        return Err(format!("`{s}`: no such day"));
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    let mut len = 86_400;
    let mut rest = rest;
    if let Some(time) = rest.strip_prefix(['T', 't', ' ']) {
        let (hm, tail) = split(time, 5).ok_or_else(bad)?;
        let (h, min) = hm.split_once(':').ok_or_else(bad)?;
        let (h, min) = (num(h, 2)?, num(min, 2)?);
        rest = tail;
        let mut sec = 0;
        len = 60;
        if let Some(t) = rest.strip_prefix(':') {
            let (ss, tail) = split(t, 2).ok_or_else(bad)?;
            sec = num(ss, 2)?;
            rest = tail;
            len = 1;
        }
        if h > 23 || min > 59 || sec > 59 {
            return Err(format!("`{s}`: no such time"));
        }
        secs += h * 3600 + min * 60 + sec;
        if let Some(offset) = parse_offset(rest).ok_or_else(bad)? {
            secs -= offset;
        }
    } else if !rest.is_empty() {
        return Err(bad());
    }
    Ok(Moment {
        start_ns: secs * NS,
        end_ns: (secs + len) * NS,
    })
}

/// The first `n` bytes and the rest, if `n` is within `s` and on a character boundary.
fn split(s: &str, n: usize) -> Option<(&str, &str)> {
    Some((s.get(..n)?, s.get(n..)?))
}

/// `""` or `Z` → no offset, `+HH:MM` / `-HHMM` / `+HH` → seconds east of UTC.
fn parse_offset(s: &str) -> Option<Option<i64>> {
    if s.is_empty() || s.eq_ignore_ascii_case("z") {
        return Some(None);
    }
    let sign = match s.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (h <= 14 && m < 60).then_some(Some(sign * (h * 3600 + m * 60)))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(s: &str) -> i64 {
        parse_moment(s).unwrap().start_ns / NS
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(start("1970-01-01"), 0);
        assert_eq!(start("2000-03-01"), 951_868_800);
        assert_eq!(start("2024-02-29"), 1_709_164_800);
        let m = parse_moment("2024-06-30").unwrap();
        assert_eq!((m.end_ns - m.start_ns) / NS, 86_400);
        assert_eq!(start("1969-12-31"), -86_400);
    }

    #[test]
    fn times_and_offsets() {
        assert_eq!(start("1970-01-01T01:02:03"), 3723);
        assert_eq!(start("1970-01-01 01:02"), 3720);
        let m = parse_moment("1970-01-01T01:02").unwrap();
        assert_eq!((m.end_ns - m.start_ns) / NS, 60);
        let m = parse_moment("1970-01-01T01:02:03Z").unwrap();
        assert_eq!((m.end_ns - m.start_ns) / NS, 1);
        assert_eq!(start("1970-01-01T02:00:00+02:00"), 0);
        assert_eq!(start("1970-01-01T00:00-0130"), 5400);
        assert_eq!(start("1970-01-01T00:00+01"), -3600);
    }

    #[test]
    fn nonsense_is_refused() {
        for s in [
            "",
            "2024",
            "2024-1-01",
            "2024-13-01",
            "2023-02-29",
            "2024-06-31",
            "2024-06-01T25:00",
            "2024-06-01T10",
            "2024-06-01X",
            "2024-06-01T10:00+2",
            "2024-06-01T10:00:00.5",
            "yesterday",
            "2024-06-0\u{e9}",
            "2024-06-01T1\u{e9}",
        ] {
            assert!(parse_moment(s).is_err(), "{s}");
        }
    }
}
