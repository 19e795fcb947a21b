//! The `date` and `currentdate` tests' values (RFC 5260 §4.2): a moment
//! in a zone, and the date parts cut from it.

use message::date::{civil_from_days, days_from_civil};

use crate::ir::DatePart;

/// A moment and the zone it is seen in (seconds east of UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub unix: i64,
    pub offset: i64,
}

/// A date header value (RFC 5322 §3.3); for `Received:` the date after the
/// last `;` (RFC 5321 §4.4). None when it does not parse (RFC 5260 §4.1:
/// the test is then false).
pub fn parse_header_date(value: &str) -> Option<Moment> {
    let value = value.rsplit_once(';').map_or(value, |(_, d)| d);
    let (unix, offset) = message::date::parse_rfc5322(value)?;
    Some(Moment { unix, offset })
}

/// One date part as RFC 5260 §4.2 writes it.
pub fn part(m: Moment, part: &DatePart) -> String {
    let local = m.unix + m.offset;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let zone = zone_text(m.offset, false);
    match part {
        DatePart::Year => format!("{y:04}"),
        DatePart::Month => format!("{mo:02}"),
        DatePart::Day => format!("{d:02}"),
        DatePart::Date => format!("{y:04}-{mo:02}-{d:02}"),
        // Modified Julian Day: days since 1858-11-17.
        DatePart::Julian => (days - days_from_civil(1858, 11, 17)).to_string(),
        DatePart::Hour => format!("{h:02}"),
        DatePart::Minute => format!("{mi:02}"),
        DatePart::Second => format!("{s:02}"),
        DatePart::Time => format!("{h:02}:{mi:02}:{s:02}"),
        DatePart::Iso8601 => format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}",
            zone_text(m.offset, true)
        ),
        DatePart::Std11 => {
            let weekday =
                ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
            format!(
                "{weekday}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} {zone}",
                message::date::month_name(mo)
            )
        }
        DatePart::Zone => zone,
        // 0 is Sunday; 1970-01-01 was a Thursday.
        DatePart::Weekday => ((days + 4).rem_euclid(7)).to_string(),
    }
}

fn zone_text(offset: i64, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.abs();
    let (h, m) = (a / 3600, a % 3600 / 60);
    match colon {
        true => format!("{sign}{h:02}:{m:02}"),
        false => format!("{sign}{h:02}{m:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let m = parse_header_date("Tue, 1 Apr 1997 09:06:31 -0800 (PST)").unwrap();
        assert_eq!(m.offset, -8 * 3600);
        assert_eq!(part(m, &DatePart::Date), "1997-04-01");
        assert_eq!(part(m, &DatePart::Time), "09:06:31");
        assert_eq!(part(m, &DatePart::Zone), "-0800");
        assert_eq!(part(m, &DatePart::Weekday), "2");
        assert_eq!(part(m, &DatePart::Iso8601), "1997-04-01T09:06:31-08:00");
        assert_eq!(part(m, &DatePart::Std11), "Tue, 01 Apr 1997 09:06:31 -0800");
        assert_eq!(part(m, &DatePart::Julian), "50539");
        let utc = Moment {
            unix: m.unix,
            offset: 0,
        };
        assert_eq!(part(utc, &DatePart::Hour), "17");
        let r = parse_header_date("from a by b with ESMTP id 1; Wed, 2 Dec 2026 10:00:00 +0000")
            .unwrap();
        assert_eq!(part(r, &DatePart::Year), "2026");
        assert!(parse_header_date("not a date").is_none());
    }
}
