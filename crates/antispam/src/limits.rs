//! What authenticated users may send: hard hourly limits (refused with a
//! temporary error past them), and the compromised-account hold: a user
//! whose sending looks like a stolen password at work has all outgoing
//! mail held in the queue until an administrator releases it.
//!
//! Signals of a hold, each with its own threshold: more messages in the
//! last hour than `submission_per_hour`; a surge far above the account's
//! usual hourly pace; many recipient domains it never wrote to before;
//! many bounces; several submissions that score as spam.

use store::antispam::SendingStats;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendingLimits {
    /// Past these, 451 4.7.28 until the hour has passed.
    pub messages_per_hour: u64,
    pub recipients_per_hour: u64,
    pub hold: HoldRules,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldRules {
    /// `[limits] submission_per_hour`.
    pub submission_per_hour: u64,
    /// A surge: this many times the usual hourly pace...
    pub surge_factor: f64,
    /// ...and at least this many messages in the hour.
    pub surge_min: u64,
    pub new_domains_per_hour: u64,
    pub bounces_per_hour: u64,
    pub spam_per_hour: u64,
}

impl Default for SendingLimits {
    fn default() -> Self {
        SendingLimits {
            messages_per_hour: 1000,
            recipients_per_hour: 5000,
            hold: HoldRules {
                submission_per_hour: 500,
                surge_factor: 10.0,
                surge_min: 50,
                new_domains_per_hour: 50,
                bounces_per_hour: 30,
                spam_per_hour: 5,
            },
        }
    }
}

/// Why an account's outgoing mail was held.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldReason {
    Volume { sent: u64, limit: u64 },
    Surge { sent: u64, usual: f64 },
    NewDomains { count: u64 },
    Bounces { count: u64 },
    Spam { count: u64 },
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldReason::Volume { sent, limit } => {
                write!(f, "{sent} messages in the last hour (the limit is {limit})")
            }
            HoldReason::Surge { sent, usual } => write!(
                f,
                "{sent} messages in the last hour, against {usual:.1} an hour usually"
            ),
            HoldReason::NewDomains { count } => {
                write!(
                    f,
                    "mail to {count} domains never written to before, within an hour"
                )
            }
            HoldReason::Bounces { count } => write!(f, "{count} bounces within an hour"),
            HoldReason::Spam { count } => {
                write!(f, "{count} messages within an hour that scored as spam")
            }
        }
    }
}

/// The first hold rule the account's recent sending breaks.
pub fn hold_reason(s: &SendingStats, r: &HoldRules) -> Option<HoldReason> {
    if s.messages_last_hour > r.submission_per_hour {
        return Some(HoldReason::Volume {
            sent: s.messages_last_hour,
            limit: r.submission_per_hour,
        });
    }
    if s.messages_last_hour >= r.surge_min
        && s.messages_last_hour as f64 > r.surge_factor * s.usual_per_hour.max(1.0)
    {
        return Some(HoldReason::Surge {
            sent: s.messages_last_hour,
            usual: s.usual_per_hour,
        });
    }
    if s.new_domains_last_hour > r.new_domains_per_hour {
        return Some(HoldReason::NewDomains {
            count: s.new_domains_last_hour,
        });
    }
    if s.bounces_last_hour > r.bounces_per_hour {
        return Some(HoldReason::Bounces {
            count: s.bounces_last_hour,
        });
    }
    if s.spam_last_hour > r.spam_per_hour {
        return Some(HoldReason::Spam {
            count: s.spam_last_hour,
        });
    }
    None
}

/// The message the administrator gets about a hold.
pub fn hold_notice(
    hostname: &str,
    to: &str,
    account: &str,
    reason: &HoldReason,
    now: i64,
) -> Vec<u8> {
    format!(
        "From: Mail System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: Outgoing mail of {account} held\r\n\
         Date: {}\r\n\
         Message-ID: <hold.{now}.{}@{hostname}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         The outgoing mail of {account} is held: nothing it sends leaves this\r\n\
         server until an administrator releases it.\r\n\r\n\
         Why: {reason}.\r\n\r\n\
         This is what a stolen password looks like. Check with the user, change\r\n\
         the password if needed (tern account passwd {account}), look at what is\r\n\
         waiting (tern queue list), delete what should not go (tern queue delete ID),\r\n\
         then release the rest:\r\n\r\n    tern account release {account}\r\n",
        message::date::rfc5322(now),
        account.replace(['@', '.'], "-"),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_rules() {
        let r = SendingLimits::default().hold;
        let quiet = SendingStats {
            messages_last_hour: 20,
            usual_per_hour: 5.0,
            ..Default::default()
        };
        assert_eq!(hold_reason(&quiet, &r), None);
        let surge = SendingStats {
            messages_last_hour: 60,
            usual_per_hour: 3.0,
            ..Default::default()
        };
        assert!(matches!(
            hold_reason(&surge, &r),
            Some(HoldReason::Surge { .. })
        ));
        let busy_but_usual = SendingStats {
            messages_last_hour: 60,
            usual_per_hour: 40.0,
            ..Default::default()
        };
        assert_eq!(hold_reason(&busy_but_usual, &r), None);
        let volume = SendingStats {
            messages_last_hour: 501,
            usual_per_hour: 400.0,
            ..Default::default()
        };
        assert!(matches!(
            hold_reason(&volume, &r),
            Some(HoldReason::Volume { .. })
        ));
        let spread = SendingStats {
            new_domains_last_hour: 51,
            ..Default::default()
        };
        assert!(matches!(
            hold_reason(&spread, &r),
            Some(HoldReason::NewDomains { count: 51 })
        ));
        let notice = String::from_utf8(hold_notice(
            "mx.a.test",
            "postmaster@a.test",
            "alice@a.test",
            &HoldReason::Bounces { count: 40 },
            0,
        ))
        .unwrap();
        assert!(notice.contains("40 bounces within an hour"));
        assert!(notice.contains("tern account release alice@a.test"));
    }
}
