//! RFC 5322 §3.3 date-time, for Date:, Received: and internal dates, in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `(year, month 1-12, day 1-31)` of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 5322 date-time (as Date: holds it) as Unix seconds and the
/// zone's offset in seconds east of UTC; None when it does not parse.
pub fn parse_rfc5322(value: &str) -> Option<(i64, i64)> {
    let raw = format!("Date: {}\r\n\r\n", value.trim());
    let parsed = mail_parser::MessageParser::default().parse_headers(raw.as_bytes())?;
    let d = parsed.date()?;
    if !d.is_valid() {
        return None;
    }
    let sign = if d.tz_before_gmt { -1 } else { 1 };
    let offset = (d.tz_hour as i64 * 3600 + d.tz_minute as i64 * 60) * sign;
    Some((d.to_timestamp(), offset))
}

/// A zone `+hhmm` / `-hhmm` (RFC 5322 §3.3, RFC 9051 §9 zone, RFC 5260
/// §4.2) in seconds east of UTC. Read as octets, so a multi-byte
/// character is no digit and no place to cut the text (C-FZ6).
pub fn parse_zone(zone: &str) -> Option<i64> {
    let &[sign, h1, h2, m1, m2] = zone.as_bytes() else {
        return None;
    };
    if ![h1, h2, m1, m2].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let two_digits = |tens: u8, ones: u8| i64::from(tens - b'0') * 10 + i64::from(ones - b'0');
    let (h, m) = (two_digits(h1, h2), two_digits(m1, m2));
    if h > 23 || m > 59 {
        return None;
    }
    match sign {
        b'+' => Some(h * 3600 + m * 60),
        b'-' => Some(-(h * 3600 + m * 60)),
        _ => None,
    }
}

/// `Mon, 23 Nov 2026 12:34:56 +0000` for a Unix time.
pub fn rfc5322(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {d} {month} {y} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The three-letter month name (1-12), as IMAP date formats use it.
/// An RFC 3339 `date-time` (`2026-12-03T10:00:00Z`, `...+01:00`, with
/// optional fractions) as Unix seconds.
pub fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Unix seconds as an RFC 3339 `date-time` in UTC (`2026-12-03T10:00:00Z`).
pub fn rfc3339_text(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn month_name(month: u32) -> &'static str {
    MONTHS[(month.clamp(1, 12) - 1) as usize]
}

/// Month number 1-12 of a three-letter month name, case-insensitive.
pub fn month_number(name: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(1_795_437_296), "Mon, 23 Nov 2026 12:34:56 +0000");
        assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(rfc3339("2026-12-03T10:00:00.25Z"), Some(1_796_292_000));
        assert_eq!(rfc3339_text(1_796_292_000), "2026-12-03T10:00:00Z");
        assert_eq!(rfc3339(&rfc3339_text(123_456_789)), Some(123_456_789));
        assert_eq!(rfc3339("2026-12-03 10:00:00Z"), None);
        assert_eq!(rfc3339("2026-13-03T10:00:00Z"), None);
        assert_eq!(rfc3339("2026-12-03T10:00:00"), None);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 59, 10_957, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(month_number("nov"), Some(11));
        assert_eq!(month_name(2), "Feb");
    }
}
