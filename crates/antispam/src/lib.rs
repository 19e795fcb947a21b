//! Spam defence: the inbound check pipeline the SMTP session runs at each
//! stage (`pipeline`), typed objections instead of reply codes
//! (`objection`), scores and the header that explains them (`score`), and
//! the checks themselves: greylisting (`greylist`, RFC 6647), DNS block and
//! allow lists (`dnsbl`, RFC 5782), a transparent rule set (`rules`, with
//! `html`), a Bayesian classifier each user trains (`bayes`, `tokens`), and
//! the limits and compromised-account hold of outgoing mail (`limits`).
//! Sender authentication (SPF, DKIM, DMARC, ARC, iprev) is the `policy`
//! crate's; the pipeline calls it at its stages.

pub mod bayes;
pub mod dnsbl;
pub mod greylist;
pub mod html;
pub mod learn;
pub mod limits;
pub mod objection;
pub mod pipeline;
pub mod rules;
pub mod score;
pub mod tokens;

pub use objection::Objection;
pub use pipeline::{
    AccountVerdict, AntispamConfig, Assessment, Checks, Classified, Client, DataVerdict,
};
