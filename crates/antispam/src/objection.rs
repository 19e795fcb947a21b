//! Why a client or a message is turned away, typed: the checks never pick
//! a reply code; the SMTP crate maps each objection to its reply in its one
//! error mapping (temporary ones to 4xx, the rest to 5xx).

use std::net::IpAddr;

use policy::verify::AuthProblem;

#[derive(Debug, Clone, PartialEq)]
pub enum Objection {
    /// Sender authentication (SPF, DMARC, no usable From:).
    Auth(AuthProblem),
    /// RFC 6647: first time this (client network, sender, recipient) is seen,
    /// or retried too soon.
    Greylisted { wait: i64 },
    /// The client address is on block lists (RFC 5782), their names.
    Listed { ip: IpAddr, lists: Vec<String> },
    /// The client spoke before our greeting ended (postscreen's pregreet).
    EarlyTalker,
    /// The message scored at or above the reject score.
    Spam { score: f64, rules: String },
    /// An authenticated user sent more than the hourly limit.
    RateLimited { what: &'static str, limit: u64 },
}

// Scores are sums of finite rule points, never NaN: equality is total.
impl Eq for Objection {}

impl Objection {
    pub fn is_temporary(&self) -> bool {
        match self {
            Objection::Auth(a) => a.is_temporary(),
            Objection::Greylisted { .. } | Objection::RateLimited { .. } => true,
            Objection::Listed { .. } | Objection::EarlyTalker | Objection::Spam { .. } => false,
        }
    }
}

impl std::fmt::Display for Objection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Objection::Auth(a) => a.fmt(f),
            Objection::Greylisted { wait } => write!(
                f,
                "Greylisted: this is the first attempt; please try again in {wait} seconds or later"
            ),
            Objection::Listed { ip, lists } => {
                write!(f, "Client {ip} is listed by {}", lists.join(", "))
            }
            Objection::EarlyTalker => {
                f.write_str("Protocol error: client spoke before the greeting")
            }
            Objection::Spam { score, rules } => {
                write!(f, "Message looks like spam (score {score:.1}: {rules})")
            }
            Objection::RateLimited { what, limit } => write!(
                f,
                "Sending limit reached ({limit} {what} an hour); try again later"
            ),
        }
    }
}
