//! Tests: RFC 5228 §5 and the extensions'. Each gathers the values it
//! compares (header fields, addresses, envelope, body texts, dates...)
//! and hands them to [`crate::compare`] with the keys.

use message::mime::Entity;

use super::{Boxed, R, Run, Scope};
use crate::compare::{self, Found};
use crate::ir::{AddressPart, BodyTransform, Index, MimeOpts, MimePiece, Test, Zone};
use crate::mail;

/// RFC 7352 §3.1: how long a duplicate id is remembered by default, and at most.
const DUPLICATE_DEFAULT: u64 = 7 * 86_400;
const DUPLICATE_MAX: u64 = 90 * 86_400;

impl Run<'_> {
    pub(super) fn test<'b>(&'b mut self, t: &'b Test, scope: &'b Scope) -> Boxed<'b, bool> {
        Box::pin(async move {
            self.step()?;
            match t {
                Test::True => Ok(true),
                Test::False => Ok(false),
                Test::Not(inner) => Ok(!self.test(inner, scope).await?),
                Test::AllOf(list) => {
                    for x in list {
                        if !self.test(x, scope).await? {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }
                Test::AnyOf(list) => {
                    for x in list {
                        if self.test(x, scope).await? {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                }
                Test::MailboxExists(names) => {
                    for n in self.expand_all(names, scope) {
                        if !self.host.mailbox_exists(&n).await {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }
                Test::Duplicate {
                    handle,
                    header,
                    uniqueid,
                    seconds,
                    last,
                } => {
                    let handle = handle
                        .as_ref()
                        .map(|h| self.expand(h, scope))
                        .unwrap_or_default();
                    let id = match (uniqueid, header) {
                        (Some(u), _) => Some(self.expand(u, scope)),
                        (None, Some(h)) => self.first_value(&self.expand(h, scope)),
                        (None, None) => self.first_value("Message-ID"),
                    };
                    let Some(id) = id.filter(|i| !i.is_empty()) else {
                        return Ok(false);
                    };
                    let seconds = seconds.unwrap_or(DUPLICATE_DEFAULT).min(DUPLICATE_MAX);
                    self.duplicate(&handle, &id, seconds, *last).await
                }
                other => self.compare_test(other, scope),
            }
        })
    }

    /// RFC 7352 §3: seen before? Recorded for when the delivery succeeds
    /// (again, with `:last`, to restart the period).
    async fn duplicate(&mut self, handle: &str, id: &str, seconds: u64, last: bool) -> R<bool> {
        let key = tracking_key(&["duplicate", handle, id]);
        if let Some(seen) = self.duplicates.get(&key) {
            return Ok(*seen);
        }
        let seen = self.host.seen(&key).await;
        self.duplicates.insert(key.clone(), seen);
        if !seen || last {
            self.track.push(crate::action::Tracked {
                id: key,
                expires: self.ctx.now + seconds as i64,
            });
        }
        Ok(seen)
    }

    fn first_value(&self, name: &str) -> Option<String> {
        self.mail.raw_values(name).first().map(|v| mail::decoded(v))
    }

    /// The tests that compare values with keys.
    fn compare_test(&mut self, t: &Test, scope: &Scope) -> R<bool> {
        let (matcher, values, keys, sets_matches) = match t {
            Test::Address {
                part,
                matcher,
                headers,
                keys,
                index,
                mime,
            } => {
                let names = self.expand_all(headers, scope);
                let mut values = Vec::new();
                for raw in self.field_values(&names, *index, mime) {
                    for (local, domain) in mail::addresses(raw.as_bytes()) {
                        values.extend(address_part(&local, &domain, *part, self.ctx.separator));
                    }
                }
                (matcher, values, self.expand_all(keys, scope), true)
            }
            Test::Envelope {
                part,
                matcher,
                fields,
                keys,
            } => {
                let mut values = Vec::new();
                for f in self.expand_all(fields, scope) {
                    let address = match f.to_ascii_lowercase().as_str() {
                        "from" => Some(self.ctx.envelope_from.clone()),
                        "to" => Some(self.ctx.envelope_to.clone()),
                        "auth" => self.ctx.auth.clone(),
                        _ => None,
                    };
                    match address {
                        // RFC 5228 §5.4: the null reverse-path is "" whatever the part.
                        Some(a) if a.is_empty() => values.push(String::new()),
                        Some(a) => {
                            let (local, domain) = mail::split_address(&a);
                            values.extend(address_part(&local, &domain, *part, self.ctx.separator));
                        }
                        None => {}
                    }
                }
                (matcher, values, self.expand_all(keys, scope), true)
            }
            Test::Header {
                matcher,
                headers,
                keys,
                index,
                mime,
            } => {
                let names = self.expand_all(headers, scope);
                let raw = self.field_values(&names, *index, mime);
                let values = match &mime.piece {
                    Some(piece) => raw.iter().flat_map(|v| mime_piece(v, piece)).collect(),
                    None => raw,
                };
                (matcher, values, self.expand_all(keys, scope), true)
            }
            Test::Exists { headers, mime } => {
                let names = self.expand_all(headers, scope);
                let all = names.iter().all(|n| {
                    !self
                        .field_values(std::slice::from_ref(n), None, mime)
                        .is_empty()
                });
                return Ok(all);
            }
            Test::Size { over, limit } => {
                let size = self.mail.size();
                return Ok(if *over { size > *limit } else { size < *limit });
            }
            Test::Body {
                transform,
                types,
                matcher,
                keys,
            } => {
                let types = self.expand_all(types, scope);
                let values = self.body_values(*transform, types);
                let keys = self.expand_all(keys, scope);
                // RFC 5173 §5: the body test sets no match variables.
                return Ok(compare::test(matcher, &values, &keys, &mut self.patterns)?.matched);
            }
            Test::String {
                matcher,
                sources,
                keys,
            } => {
                let mut values = self.expand_all(sources, scope);
                if matches!(matcher.kind, crate::ir::MatchType::Count(_)) {
                    // RFC 5229 §5: :count counts the non-empty strings.
                    values.retain(|v| !v.is_empty());
                }
                (matcher, values, self.expand_all(keys, scope), true)
            }
            Test::HasFlag {
                matcher,
                variables,
                keys,
            } => {
                let values = match variables {
                    Some(vars) => self
                        .expand_all(vars, scope)
                        .iter()
                        .flat_map(|v| {
                            super::act::split_flags(self.variable(&v.to_ascii_lowercase(), scope))
                        })
                        .collect(),
                    None => self.flags.clone(),
                };
                let keys: Vec<String> = self
                    .expand_all(keys, scope)
                    .iter()
                    .flat_map(|k| k.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                    .collect();
                (matcher, values, keys, true)
            }
            Test::Date {
                matcher,
                zone,
                header,
                part,
                keys,
                index,
            } => {
                let moment = match header {
                    None => Some(crate::date::Moment {
                        unix: self.ctx.now,
                        offset: 0,
                    }),
                    Some(h) => {
                        let name = self.expand(h, scope);
                        self.field_values(std::slice::from_ref(&name), *index, &MimeOpts::default())
                            .first()
                            .and_then(|v| crate::date::parse_header_date(v))
                    }
                };
                let Some(mut moment) = moment else {
                    return Ok(false);
                };
                match zone {
                    Zone::Original => {}
                    Zone::Local => moment.offset = 0,
                    Zone::Fixed(z) => match message::date::parse_zone(&self.expand(z, scope)) {
                        Some(offset) => moment.offset = offset,
                        None => return Err("date: bad :zone".into()),
                    },
                }
                let value = crate::date::part(moment, part);
                (matcher, vec![value], self.expand_all(keys, scope), true)
            }
            Test::SpamTest {
                matcher,
                percent,
                value,
            } => {
                let v = match (self.ctx.spam, percent) {
                    (None, _) => "0".to_string(),
                    (Some(s), true) => s.percent.to_string(),
                    (Some(s), false) => s.level.to_string(),
                };
                (matcher, vec![v], vec![self.expand(value, scope)], true)
            }
            Test::Environment {
                matcher,
                name,
                keys,
            } => {
                let name = self.expand(name, scope).to_ascii_lowercase();
                let Some(v) = self
                    .ctx
                    .environment
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
                else {
                    return Ok(false);
                };
                (matcher, vec![v], self.expand_all(keys, scope), true)
            }
            Test::ValidNotifyMethod(uris) => {
                return Ok(self
                    .expand_all(uris, scope)
                    .iter()
                    .all(|u| crate::mailto::parse(u).is_ok()));
            }
            Test::NotifyMethodCapability {
                matcher,
                uri,
                capability,
                keys,
            } => {
                if crate::mailto::parse(&self.expand(uri, scope)).is_err() {
                    return Ok(false);
                }
                // RFC 5435 §5: "online" is the one capability; mail cannot know.
                if !self
                    .expand(capability, scope)
                    .eq_ignore_ascii_case("online")
                {
                    return Ok(false);
                }
                (
                    matcher,
                    vec!["maybe".to_string()],
                    self.expand_all(keys, scope),
                    false,
                )
            }
            Test::True
            | Test::False
            | Test::Not(_)
            | Test::AllOf(_)
            | Test::AnyOf(_)
            | Test::MailboxExists(_)
            | Test::Duplicate { .. } => return Ok(false),
        };
        let Found { matched, captures } =
            compare::test(matcher, &values, &keys, &mut self.patterns)?;
        if matched
            && sets_matches
            && let Some(c) = captures
        {
            self.matches = c;
        }
        Ok(matched)
    }

    /// The decoded values of the named fields: of the message (as edited),
    /// or with `:mime` of the current part, or of it and every part below
    /// with `:anychild` (RFC 5703 §4.1). `:index` picks one occurrence
    /// (RFC 5260 §6).
    fn field_values(&self, names: &[String], index: Option<Index>, mime: &MimeOpts) -> Vec<String> {
        let mut out = Vec::new();
        if !mime.mime {
            for n in names {
                let raw = self.mail.raw_values(n);
                out.extend(pick(raw, index).into_iter().map(mail::decoded));
            }
            return out;
        }
        let root = self.mail.tree();
        let current: &Entity = self.parts.last().unwrap_or(root);
        let entities: Vec<&Entity> = match mime.anychild {
            true => mail::subtree(current),
            false => vec![current],
        };
        for e in entities {
            let top = std::ptr::eq(e, root);
            for n in names {
                let raw: Vec<Vec<u8>> = match top {
                    true => self
                        .mail
                        .raw_values(n)
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect(),
                    false => message::header::fields(self.mail.part_head(e))
                        .into_iter()
                        .filter(|f| f.name.eq_ignore_ascii_case(n))
                        .map(|f| f.value.to_vec())
                        .collect(),
                };
                if raw.is_empty() && n.eq_ignore_ascii_case("content-type") && mime.piece.is_some()
                {
                    // RFC 2045 §5.2: the default type of a part without one.
                    let ct = &e.content_type;
                    out.push(format!("{}/{}", ct.kind, ct.subtype));
                    continue;
                }
                out.extend(pick(raw, index).iter().map(|v| mail::decoded(v)));
            }
        }
        out
    }

    /// RFC 5173 §5: the texts the body test compares.
    /// Decoded once per run and kept: a script may test the body many times.
    fn body_values(
        &mut self,
        transform: BodyTransform,
        types: Vec<String>,
    ) -> std::sync::Arc<Vec<String>> {
        let key = (transform, types);
        if let Some(v) = self.bodies.get(&key) {
            return v.clone();
        }
        let values = std::sync::Arc::new(self.decode_body(key.0, &key.1));
        self.bodies.insert(key, values.clone());
        values
    }

    fn decode_body(&self, transform: BodyTransform, types: &[String]) -> Vec<String> {
        match transform {
            BodyTransform::Raw => vec![String::from_utf8_lossy(&self.mail.raw_body()).into_owned()],
            BodyTransform::Text => leaves(self.mail.tree())
                .into_iter()
                .filter(|e| e.content_type.kind == "text")
                .map(|e| self.mail.part_text(e, true))
                .collect(),
            BodyTransform::Content => leaves(self.mail.tree())
                .into_iter()
                .filter(|e| types.iter().any(|t| type_matches(e, t)))
                .map(|e| self.mail.part_text(e, false))
                .collect(),
        }
    }
}

/// RFC 5173 §5.2: "" is every part, "text" a type, "text/html" exactly.
fn type_matches(e: &Entity, t: &str) -> bool {
    let t = t.trim().to_ascii_lowercase();
    match t.split_once('/') {
        _ if t.is_empty() => true,
        Some((kind, sub)) => e.content_type.kind == kind && e.content_type.subtype == sub,
        None => e.content_type.kind == t,
    }
}

/// The parts that hold content (not multiparts, not message/rfc822 wrappers).
fn leaves(root: &Entity) -> Vec<&Entity> {
    mail::subtree(root)
        .into_iter()
        .filter(|e| mail::children(e).is_empty())
        .collect()
}

fn pick<T>(values: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(i) = index else {
        return values;
    };
    let n = values.len();
    let position = match i.last {
        true => n.checked_sub(i.n),
        false => i.n.checked_sub(1),
    };
    values
        .into_iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) == position)
        .map(|(_, v)| v)
        .collect()
}

/// RFC 5228 §2.7.4 and RFC 5233 §4: one part of an address; None when the
/// part does not exist (`:detail` without a separator).
fn address_part(local: &str, domain: &str, part: AddressPart, sep: Option<char>) -> Option<String> {
    let split = || sep.and_then(|s| local.split_once(s));
    match part {
        AddressPart::All if domain.is_empty() => Some(local.to_string()),
        AddressPart::All => Some(format!("{local}@{domain}")),
        AddressPart::LocalPart => Some(local.to_string()),
        AddressPart::Domain => Some(domain.to_string()),
        AddressPart::User => Some(split().map_or(local, |(u, _)| u).to_string()),
        AddressPart::Detail => split().map(|(_, d)| d.to_string()),
    }
}

/// RFC 5703 §4.2: a piece of a Content-Type-like value.
fn mime_piece(value: &str, piece: &MimePiece) -> Vec<String> {
    let (main, params) = message::mime::parse_with_params(value);
    let main = main.trim().to_string();
    match piece {
        MimePiece::ContentType => vec![main],
        MimePiece::Type => vec![main.split('/').next().unwrap_or("").to_string()],
        MimePiece::Subtype => main
            .split_once('/')
            .map(|(_, s)| vec![s.to_string()])
            .unwrap_or_default(),
        MimePiece::Param(names) => params
            .into_iter()
            .filter(|(n, _)| names.iter().any(|x| x.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v)
            .collect(),
    }
}

/// A stable key for tracked ids (duplicates, vacation responses).
pub(crate) fn tracking_key(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}
