//! Scores: every signal that is not a refusal adds points under a rule
//! name; the total decides (at or above `reject_score`: refused at the end
//! of DATA; at or above `junk_score`: the Junk folder), and one header
//! field tells the reader which rules fired and what each was worth.

/// One rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Upper-case rule name, e.g. `BAYES_99`, `HTML_ONLY`.
    pub rule: &'static str,
    pub points: f64,
    /// What exactly (for the log line), e.g. the list or the token.
    pub detail: String,
}

impl Hit {
    pub fn new(rule: &'static str, points: f64, detail: impl Into<String>) -> Hit {
        Hit {
            rule,
            points,
            detail: detail.into(),
        }
    }
}

/// What to do with a message, from its total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Inbox,
    Junk,
    Reject,
}

/// The thresholds (`[antispam] junk_score`, `reject_score`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub junk: f64,
    pub reject: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            junk: 5.0,
            reject: 15.0,
        }
    }
}

pub fn total(hits: &[Hit]) -> f64 {
    hits.iter().fold(0.0, |sum, h| sum + h.points)
}

impl Thresholds {
    pub fn disposition(&self, score: f64) -> Disposition {
        if score >= self.reject {
            Disposition::Reject
        } else if score >= self.junk {
            Disposition::Junk
        } else {
            Disposition::Inbox
        }
    }
}

/// A score on the scale of RFC 5235 (Sieve's spamtest): the level 1 (not
/// spam) to 10 (spam at the reject threshold or above), and the percent 0
/// to 100 of the reject threshold.
pub fn spam_scale(score: f64, t: &Thresholds) -> (u8, u8) {
    let fraction = match t.reject > 0.0 {
        true => (score / t.reject).clamp(0.0, 1.0),
        false => 1.0,
    };
    let percent = (fraction * 100.0).round() as u8;
    let level = 1 + (fraction * 9.0).round() as u8;
    (level, percent)
}

/// The rules as `NAME(points)` joined by spaces, strongest first.
pub fn rule_list(hits: &[Hit]) -> String {
    let mut sorted: Vec<&Hit> = hits.iter().collect();
    sorted.sort_by(|a, b| b.points.abs().total_cmp(&a.points.abs()));
    sorted
        .iter()
        .map(|h| format!("{}({:.1})", h.rule, h.points))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99(6.0) ...`
/// (the form SpamAssassin made familiar: MUAs and filters read `score=`).
pub fn status_field(hits: &[Hit], t: &Thresholds) -> String {
    let score = total(hits);
    let yes = if score >= t.junk { "Yes" } else { "No" };
    let tests = rule_list(hits);
    let tests = if tests.is_empty() {
        "none".to_string()
    } else {
        tests
    };
    let mut field = format!(
        "X-Spam-Status: {yes}, score={score:.1} required={:.1}",
        t.junk
    );
    // Fold long lists (RFC 5322 §2.2.3) at the spaces between rules.
    let mut line_len = field.len();
    field.push_str(" tests=");
    line_len += 7;
    for (i, test) in tests.split(' ').enumerate() {
        if i > 0 {
            if line_len + test.len() + 1 > 78 {
                field.push_str("\r\n\t");
                line_len = 1;
            } else {
                field.push(' ');
                line_len += 1;
            }
        }
        field.push_str(test);
        line_len += test.len();
    }
    field.push_str("\r\n");
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5235_scale() {
        let t = Thresholds::default();
        assert_eq!(spam_scale(-3.0, &t), (1, 0));
        assert_eq!(spam_scale(7.5, &t), (6, 50));
        assert_eq!(spam_scale(40.0, &t), (10, 100));
    }

    #[test]
    fn header_and_disposition() {
        let hits = vec![
            Hit::new("HTML_ONLY", 0.7, ""),
            Hit::new("BAYES_99", 6.0, ""),
            Hit::new("DNSWL", -1.0, ""),
        ];
        let t = Thresholds::default();
        assert!((total(&hits) - 5.7).abs() < 1e-9);
        assert_eq!(t.disposition(total(&hits)), Disposition::Junk);
        assert_eq!(t.disposition(20.0), Disposition::Reject);
        assert_eq!(t.disposition(-3.0), Disposition::Inbox);
        assert_eq!(
            status_field(&hits, &t),
            "X-Spam-Status: Yes, score=5.7 required=5.0 tests=BAYES_99(6.0) DNSWL(-1.0)\r\n\tHTML_ONLY(0.7)\r\n"
        );
        assert_eq!(
            status_field(&[], &t),
            "X-Spam-Status: No, score=0.0 required=5.0 tests=none\r\n"
        );
        let many: Vec<Hit> = (0..20)
            .map(|_| Hit::new("SOME_LONG_RULE_NAME", 0.1, ""))
            .collect();
        let f = status_field(&many, &t);
        assert!(f.lines().all(|l| l.len() <= 78), "{f}");
    }
}
