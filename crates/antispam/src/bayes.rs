//! A Bayesian classifier in the manner of SpamBayes and bogofilter: each
//! token's spam probability by Robinson's method (with a prior for rare
//! tokens), the strongest clues combined by Fisher's chi-square method
//! into one probability that the message is spam.
//!
//! Each account has its own table, trained when the user moves a message
//! into or out of Junk (or by `tern spam train`); every training also goes
//! into the shared table, which decides for accounts that have not trained
//! enough of their own yet.
//!
//! Implementation notes
//! - Robinson: p(w) = (s/S) / (s/S + h/H); f(w) = (a·x + n·p) / (a + n)
//!   with n = s + h, strength a = 0.45 and prior x = 0.5 (SpamBayes).
//! - Fisher: with the clues' f (at most [`MAX_CLUES`], each at least
//!   [`MIN_STRENGTH`] from 0.5), S = 1 - C⁻¹(-2 Σ ln(1-f), 2n), H = 1 -
//!   C⁻¹(-2 Σ ln f, 2n), spam probability (1 + S - H) / 2.
//! - Clues closer to 0.5 than 0.346 are left out, SpamAssassin's choice
//!   (SpamBayes keeps them from 0.1): word salad of ordinary words, added
//!   to spam to drag it towards "unsure", then carries no weight.
//! - A table answers once it learned from [`MIN_TRAINED`] spam and as many
//!   ham; the account's own table is used once it has [`MIN_OWN`] of each.

use std::collections::HashMap;
use std::sync::Arc;

use store::antispam::{SHARED, Trained, Training};
use store::{AccountId, Store, StoreError};

use crate::pipeline::CONTENT_VIEW;
use crate::score::Hit;
use crate::tokens;

pub const MAX_CLUES: usize = 150;
pub const MIN_STRENGTH: f64 = 0.346;
const STRENGTH: f64 = 0.45;
const PRIOR: f64 = 0.5;
/// Messages of each class a table needs before it is trusted.
pub const MIN_TRAINED: u64 = 20;
/// Of each class before an account's own table replaces the shared one.
pub const MIN_OWN: u64 = 50;
/// Tokens kept per table (the rarest and oldest go first).
pub const MAX_SHARED_TOKENS: usize = 2_000_000;
pub const MAX_OWN_TOKENS: usize = 300_000;

/// What the classifier made of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// 0 (ham) to 1 (spam).
    pub probability: f64,
    /// The strongest clues: token and its probability, strongest first.
    pub clues: Vec<(String, f64)>,
    /// Whose table decided: the account's own, or the shared one.
    pub own_table: bool,
}

impl Classification {
    /// The rule this probability fires, SpamAssassin-style bands.
    pub fn hit(&self) -> Hit {
        let p = self.probability;
        let (rule, points) = match p {
            _ if p >= 0.99 => ("BAYES_99", 6.0),
            _ if p >= 0.95 => ("BAYES_95", 4.0),
            _ if p >= 0.80 => ("BAYES_80", 2.0),
            _ if p >= 0.60 => ("BAYES_60", 1.0),
            _ if p > 0.40 => ("BAYES_50", 0.0),
            _ if p > 0.20 => ("BAYES_20", -0.5),
            _ if p > 0.05 => ("BAYES_05", -1.0),
            _ => ("BAYES_00", -2.0),
        };
        Hit::new(rule, points, format!("spam probability {p:.3}"))
    }
}

/// How long a table's totals are kept in memory (they change slowly: only
/// training moves them).
const TOTALS_FOR: std::time::Duration = std::time::Duration::from_secs(2);
const TOTALS_KEPT: usize = 10_000;

type TotalsCache = std::sync::Mutex<HashMap<i64, (std::time::Instant, (u64, u64))>>;

pub struct Bayes {
    store: Arc<dyn Store>,
    totals: TotalsCache,
}

impl Bayes {
    pub fn new(store: Arc<dyn Store>) -> Bayes {
        Bayes {
            store,
            totals: TotalsCache::default(),
        }
    }

    /// A table's totals, from memory when fresh.
    async fn totals(&self, owner: i64) -> Result<(u64, u64), StoreError> {
        if let Ok(cache) = self.totals.lock()
            && let Some((at, t)) = cache.get(&owner)
            && at.elapsed() < TOTALS_FOR
        {
            return Ok(*t);
        }
        let t = self.store.spam_totals(owner).await?;
        if let Ok(mut cache) = self.totals.lock() {
            if cache.len() >= TOTALS_KEPT {
                cache.clear();
            }
            cache.insert(owner, (std::time::Instant::now(), t));
        }
        Ok(t)
    }

    /// Classify for `account` (None: the shared table). None when no table
    /// learned enough yet.
    pub async fn classify(
        &self,
        account: Option<AccountId>,
        raw: &[u8],
    ) -> Result<Option<Classification>, StoreError> {
        let words = tokens::tokenize(raw);
        self.classify_tokens(account, &words).await
    }

    pub async fn classify_tokens(
        &self,
        account: Option<AccountId>,
        words: &[String],
    ) -> Result<Option<Classification>, StoreError> {
        let Some((owner, totals)) = self.table(account).await? else {
            return Ok(None);
        };
        let by_hash: HashMap<u64, &String> = words.iter().map(|w| (tokens::hash(w), w)).collect();
        let counts = self
            .store
            .spam_tokens(owner, by_hash.keys().copied().collect())
            .await?;
        let mut clues: Vec<(String, f64)> = counts
            .into_iter()
            .filter_map(|(h, s, hm)| {
                let f = robinson(s, hm, totals);
                let word = by_hash.get(&h)?;
                ((f - 0.5).abs() >= MIN_STRENGTH).then(|| ((*word).clone(), f))
            })
            .collect();
        clues.sort_by(|a, b| {
            (b.1 - 0.5)
                .abs()
                .total_cmp(&(a.1 - 0.5).abs())
                .then_with(|| a.0.cmp(&b.0))
        });
        clues.truncate(MAX_CLUES);
        let probability = fisher(clues.iter().map(|c| c.1));
        Ok(Some(Classification {
            probability,
            clues,
            own_table: owner != SHARED,
        }))
    }

    /// Whether the account trained enough for its own table to decide.
    pub async fn has_own_table(&self, account: AccountId) -> bool {
        self.totals(account.0)
            .await
            .is_ok_and(|(s, h)| s >= MIN_OWN && h >= MIN_OWN)
    }

    /// The table that decides for `account`, with its totals.
    async fn table(
        &self,
        account: Option<AccountId>,
    ) -> Result<Option<(i64, (u64, u64))>, StoreError> {
        if let Some(a) = account {
            let own = self.totals(a.0).await?;
            if own.0 >= MIN_OWN && own.1 >= MIN_OWN {
                return Ok(Some((a.0, own)));
            }
        }
        let shared = self.totals(SHARED).await?;
        Ok((shared.0 >= MIN_TRAINED && shared.1 >= MIN_TRAINED).then_some((SHARED, shared)))
    }

    /// Learn a message as spam or ham, for `account` (and the shared
    /// table); training it again the same way changes nothing, the other
    /// way undoes the first. Only its first [`CONTENT_VIEW`] octets count,
    /// as when it is scored.
    pub async fn train(
        &self,
        account: Option<AccountId>,
        raw: &[u8],
        spam: bool,
        now: i64,
    ) -> Result<Trained, StoreError> {
        let raw = &raw[..raw.len().min(CONTENT_VIEW)];
        let words = tokens::tokenize(raw);
        let mut owners = vec![SHARED];
        owners.extend(account.map(|a| a.0));
        let outcome = self
            .store
            .spam_train(Training {
                owners: owners.clone(),
                digest: digest(raw),
                spam,
                tokens: words.iter().map(|w| tokens::hash(w)).collect(),
                now,
            })
            .await?;
        for owner in owners {
            if let Ok(mut cache) = self.totals.lock() {
                cache.remove(&owner);
            }
            let max = if owner == SHARED {
                MAX_SHARED_TOKENS
            } else {
                MAX_OWN_TOKENS
            };
            self.store.spam_prune(owner, max).await?;
        }
        Ok(outcome)
    }
}

/// A digest of the message that survives what delivery adds on top (our
/// trace fields): its Message-ID and its body.
fn digest(raw: &[u8]) -> Vec<u8> {
    let body = &raw[message::header::header_end(raw)..];
    let id = message::header::fields_named(raw, "Message-ID")
        .first()
        .map(|f| f.unfolded())
        .unwrap_or_default();
    [
        tokens::hash(&id).to_le_bytes(),
        tokens::hash_bytes(body).to_le_bytes(),
    ]
    .concat()
}

/// Robinson's probability for a token seen `spam` and `ham` times.
pub fn robinson(spam: u32, ham: u32, totals: (u64, u64)) -> f64 {
    let (ns, nh) = (totals.0.max(1) as f64, totals.1.max(1) as f64);
    let (s, h) = (f64::from(spam), f64::from(ham));
    let ps = s / ns;
    let ph = h / nh;
    let n = s + h;
    let p = if ps + ph > 0.0 { ps / (ps + ph) } else { PRIOR };
    (STRENGTH * PRIOR + n * p) / (STRENGTH + n)
}

/// Fisher's combination (SpamBayes' chi2_spamprob); 0.5 with no clues.
pub fn fisher(probabilities: impl Iterator<Item = f64>) -> f64 {
    let mut ln_spam = 0.0;
    let mut ln_ham = 0.0;
    let mut n = 0usize;
    for f in probabilities {
        let f = f.clamp(1e-6, 1.0 - 1e-6);
        ln_ham += f.ln();
        ln_spam += (1.0 - f).ln();
        n += 1;
    }
    if n == 0 {
        return 0.5;
    }
    let s = 1.0 - chi2q(-2.0 * ln_spam, 2 * n);
    let h = 1.0 - chi2q(-2.0 * ln_ham, 2 * n);
    ((s - h + 1.0) / 2.0).clamp(0.0, 1.0)
}

/// The chi-square survival function for an even number of degrees of
/// freedom `v` (the closed form SpamBayes uses).
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math() {
        // A token seen only in spam is spammy; only in ham, hammy; unknown: 0.5.
        assert!(robinson(20, 0, (100, 100)) > 0.9);
        assert!(robinson(0, 20, (100, 100)) < 0.1);
        assert!((robinson(0, 0, (100, 100)) - 0.5).abs() < 1e-9);
        // One sighting says less than twenty.
        assert!(robinson(1, 0, (100, 100)) < robinson(20, 0, (100, 100)));
        assert!(fisher([0.99, 0.98, 0.97].into_iter()) > 0.99);
        assert!(fisher([0.01, 0.02, 0.03].into_iter()) < 0.01);
        let mixed = fisher([0.99, 0.01].into_iter());
        assert!((mixed - 0.5).abs() < 0.01, "{mixed}");
        assert!((fisher(std::iter::empty()) - 0.5).abs() < 1e-9);
        assert!((chi2q(0.0, 4) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bands() {
        let c = |p| Classification {
            probability: p,
            clues: vec![],
            own_table: false,
        };
        assert_eq!(c(0.999).hit().rule, "BAYES_99");
        assert_eq!(c(0.5).hit().points, 0.0);
        assert_eq!(c(0.001).hit().rule, "BAYES_00");
    }
}
