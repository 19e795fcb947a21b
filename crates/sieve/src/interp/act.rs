//! Commands: control (RFC 5228 §3), actions (§4 and the extensions'),
//! variables, flags and header edits.

use std::sync::Arc;

use super::{Boxed, Flow, R, Run, Scope};
use crate::action::Action;
use crate::ir::{Command, FlagOp, Modifier, Script};
use crate::mail::PROTECTED_FIELDS;

impl Run<'_> {
    pub(super) async fn command(&mut self, c: &Command, scope: &mut Scope) -> R<Flow> {
        match c {
            Command::If {
                branches,
                otherwise,
            } => {
                for (test, body) in branches {
                    if self.test(test, scope).await? {
                        return self.block(body, scope).await;
                    }
                }
                match otherwise {
                    Some(body) => self.block(body, scope).await,
                    None => Ok(Flow::Next),
                }
            }
            Command::Stop => Ok(Flow::Stop),
            Command::Return => Ok(Flow::Return),
            Command::Break { name } => Ok(Flow::Break(name.clone())),
            Command::Global(names) => {
                scope.shared.extend(names.iter().cloned());
                Ok(Flow::Next)
            }
            Command::Include {
                global,
                once,
                optional,
                name,
            } => {
                let name = self.expand(name, scope);
                self.include(*global, *once, *optional, name).await
            }
            Command::ForEveryPart { name, body } => self.for_every_part(name, body, scope).await,
            other => {
                self.action(other, scope).await?;
                Ok(Flow::Next)
            }
        }
    }

    async fn action(&mut self, c: &Command, scope: &mut Scope) -> R<()> {
        match c {
            Command::Keep { flags } => {
                let flags = self.flags_or_internal(flags.as_deref(), scope);
                let content = self.content();
                self.keep_cancelled = true;
                self.push(Action::Keep {
                    flags,
                    content,
                    implicit: false,
                })
            }
            Command::Discard => {
                self.keep_cancelled = true;
                if !self.actions.contains(&Action::Discard) {
                    self.actions.push(Action::Discard);
                }
                Ok(())
            }
            Command::FileInto {
                mailbox,
                copy,
                flags,
                create,
            } => {
                let mailbox = mailbox_name(&self.expand(mailbox, scope))?;
                let flags = self.flags_or_internal(flags.as_deref(), scope);
                let content = self.content();
                if !copy {
                    self.keep_cancelled = true;
                }
                self.push(Action::FileInto {
                    mailbox,
                    flags,
                    create: *create,
                    content,
                })
            }
            Command::Redirect { address, copy } => {
                let address = redirect_address(&self.expand(address, scope))?;
                if !copy {
                    self.keep_cancelled = true;
                }
                let content = self.content();
                self.push(Action::Redirect { address, content })
            }
            Command::Reject { reason, extended } => {
                let reason = self.expand(reason, scope);
                self.keep_cancelled = true;
                self.push(Action::Reject {
                    reason,
                    extended: *extended,
                })
            }
            Command::Vacation(v) => {
                if self.vacation_done {
                    // RFC 5230 §4.7: one response per message at most.
                    return Ok(());
                }
                self.vacation_done = true;
                let expanded = crate::vacation::Request {
                    seconds: v.seconds,
                    subject: v.subject.as_ref().map(|s| self.expand(s, scope)),
                    from: v.from.as_ref().map(|s| self.expand(s, scope)),
                    addresses: self.expand_all(&v.addresses, scope),
                    mime: v.mime,
                    handle: v.handle.as_ref().map(|s| self.expand(s, scope)),
                    reason: self.expand(&v.reason, scope),
                };
                match crate::vacation::decide(&expanded, self.ctx, &self.mail) {
                    Some(reply) => self.push(Action::Vacation(Box::new(reply))),
                    None => Ok(()),
                }
            }
            Command::Notify {
                method,
                from,
                importance,
                options: _,
                message,
            } => {
                let uri = self.expand(method, scope);
                let target = crate::mailto::parse(&uri)?;
                if crate::vacation::is_automatic(&self.mail) {
                    // RFC 5436 §2.7: no notification about automatic mail.
                    return Ok(());
                }
                let importance = importance
                    .as_ref()
                    .map(|i| self.expand(i, scope))
                    .and_then(|i| i.parse::<u8>().ok())
                    .filter(|i| (1..=3).contains(i))
                    .unwrap_or(2);
                let from = from
                    .as_ref()
                    .map(|f| self.expand(f, scope))
                    .filter(|f| message::Mailbox::parse(f.trim()).is_ok())
                    .unwrap_or_else(|| self.ctx.user.clone());
                let message = message.as_ref().map(|m| self.expand(m, scope));
                let n = crate::mailto::notification(target, from, importance, message, &self.mail);
                self.push(Action::Notify(Box::new(n)))
            }
            Command::Flags {
                op,
                variable,
                flags,
            } => {
                let flags = normalize_flags(&self.expand_all(flags, scope));
                let name = variable
                    .as_ref()
                    .map(|v| self.expand(v, scope).to_ascii_lowercase());
                let current = match &name {
                    Some(n) => split_flags(self.variable(n, scope)),
                    None => self.flags.clone(),
                };
                let next = apply_flags(current, *op, flags);
                match name {
                    Some(n) => self.set_variable(&n, next.join(" "), scope),
                    None => {
                        self.flags = next;
                        Ok(())
                    }
                }
            }
            Command::Set {
                name,
                value,
                modifiers,
            } => {
                let mut v = self.expand(value, scope);
                // RFC 5229 §4.1: highest precedence first.
                for m in modifiers.iter().rev() {
                    v = modify(*m, &v);
                }
                self.set_variable(name, v, scope)
            }
            Command::AddHeader { last, name, value } => {
                let name = self.expand(name, scope);
                field_name(&name)?;
                if is_protected(&name) {
                    return Ok(());
                }
                let value: String = self
                    .expand(value, scope)
                    .chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                    .take(990)
                    .collect();
                self.mail.add_field(&name, &value, *last);
                self.snapshot = None;
                Ok(())
            }
            Command::DeleteHeader {
                index,
                matcher,
                name,
                patterns,
            } => {
                let name = self.expand(name, scope);
                field_name(&name)?;
                if is_protected(&name) {
                    return Ok(());
                }
                let patterns = patterns.as_ref().map(|p| self.expand_all(p, scope));
                let values: Vec<String> = self
                    .mail
                    .raw_values(&name)
                    .into_iter()
                    .map(crate::mail::decoded)
                    .collect();
                let n = values.len();
                let mut doomed = Vec::with_capacity(n);
                for (k, v) in values.iter().enumerate() {
                    let occurrence = match index {
                        Some(i) if i.last => n - k,
                        _ => k + 1,
                    };
                    let chosen = index.is_none_or(|i| i.n == occurrence);
                    let matches = match &patterns {
                        None => true,
                        Some(p) => {
                            crate::compare::test(
                                matcher,
                                std::slice::from_ref(v),
                                p,
                                &mut self.patterns,
                            )?
                            .matched
                        }
                    };
                    doomed.push(chosen && matches);
                }
                if self.mail.delete_fields(&name, &doomed) > 0 {
                    self.snapshot = None;
                }
                Ok(())
            }
            Command::If { .. }
            | Command::Stop
            | Command::Return
            | Command::Break { .. }
            | Command::Global(_)
            | Command::Include { .. }
            | Command::ForEveryPart { .. } => Ok(()),
        }
    }

    /// Record an action: the same delivery twice is one (RFC 5228 §4.1,
    /// §4.2), flags merged; conflicting actions are a runtime error
    /// (RFC 5429 §2.1); the limits hold.
    fn push(&mut self, a: Action) -> R<()> {
        let rejects = self
            .actions
            .iter()
            .any(|x| matches!(x, Action::Reject { .. }));
        let delivers = |x: &Action| {
            matches!(
                x,
                Action::Keep { .. }
                    | Action::FileInto { .. }
                    | Action::Redirect { .. }
                    | Action::Vacation(_)
            )
        };
        match &a {
            Action::Reject { .. } if rejects => return Err("reject used twice".into()),
            Action::Reject { .. } if self.actions.iter().any(delivers) => {
                return Err(
                    "reject cannot be combined with keep, fileinto, redirect or vacation".into(),
                );
            }
            x if rejects && delivers(x) => {
                return Err(
                    "reject cannot be combined with keep, fileinto, redirect or vacation".into(),
                );
            }
            _ => {}
        }
        match &a {
            Action::Redirect { address, .. } => {
                let key = address.to_ascii_lowercase();
                if self
                    .actions
                    .iter()
                    .any(|x| matches!(x, Action::Redirect { address, .. } if address.to_ascii_lowercase() == key))
                {
                    return Ok(());
                }
                self.redirects += 1;
                if self.redirects > self.ctx.limits.max_redirects {
                    return Err(format!(
                        "more than {} redirects",
                        self.ctx.limits.max_redirects
                    ));
                }
            }
            Action::Notify(_) => {
                self.notifications += 1;
                if self.notifications > self.ctx.limits.max_notifications {
                    return Err(format!(
                        "more than {} notifications",
                        self.ctx.limits.max_notifications
                    ));
                }
            }
            Action::Keep { flags, content, .. } => {
                if let Some(Action::Keep {
                    flags: f,
                    content: c,
                    ..
                }) = self
                    .actions
                    .iter_mut()
                    .find(|x| matches!(x, Action::Keep { .. }))
                {
                    merge(f, flags);
                    *c = content.clone();
                    return Ok(());
                }
            }
            Action::FileInto {
                mailbox,
                flags,
                create,
                content,
            } => {
                let same = self
                    .actions
                    .iter_mut()
                    .find(|x| matches!(x, Action::FileInto { mailbox: m, .. } if m == mailbox));
                if let Some(Action::FileInto {
                    flags: f,
                    create: cr,
                    content: c,
                    ..
                }) = same
                {
                    merge(f, flags);
                    *cr |= create;
                    *c = content.clone();
                    return Ok(());
                }
            }
            _ => {}
        }
        if self.actions.len() >= self.ctx.limits.max_actions {
            return Err(format!("more than {} actions", self.ctx.limits.max_actions));
        }
        self.actions.push(a);
        Ok(())
    }

    fn flags_or_internal(&self, given: Option<&[crate::ir::Str]>, scope: &Scope) -> Vec<String> {
        match given {
            Some(list) => normalize_flags(&self.expand_all(list, scope)),
            None => self.flags.clone(),
        }
    }

    /// RFC 6609 §3.2.
    async fn include(&mut self, global: bool, once: bool, optional: bool, name: String) -> R<Flow> {
        if name.is_empty() || name.contains('/') || name.len() > 255 {
            return Err(format!("include: bad script name {name:?}"));
        }
        let key = (global, name.clone());
        if once && self.included.contains(&key) {
            return Ok(Flow::Next);
        }
        if self.chain.contains(&key) {
            return Err(format!("include: {name:?} includes itself"));
        }
        if self.chain.len() >= self.ctx.limits.max_include_depth {
            return Err(format!(
                "include: deeper than {}",
                self.ctx.limits.max_include_depth
            ));
        }
        let script: Arc<Script> = match self.host.script(&name, global).await {
            Ok(Some(s)) => s,
            Ok(None) if optional => return Ok(Flow::Next),
            Ok(None) => return Err(format!("include: no script {name:?}")),
            Err(e) => return Err(format!("include: {name:?}: {e}")),
        };
        self.included.insert(key.clone());
        self.chain.push(key);
        let mut scope = Scope::default();
        let flow = self.block_owned(script, &mut scope).await;
        self.chain.pop();
        match flow? {
            Flow::Stop => Ok(Flow::Stop),
            _ => Ok(Flow::Next),
        }
    }

    fn block_owned<'b>(&'b mut self, script: Arc<Script>, scope: &'b mut Scope) -> Boxed<'b, Flow> {
        Box::pin(async move { self.block(&script.commands, scope).await })
    }

    /// RFC 5703 §3: the body once for each part below the current one,
    /// depth first.
    async fn for_every_part(
        &mut self,
        name: &Option<String>,
        body: &[Command],
        scope: &mut Scope,
    ) -> R<Flow> {
        let current = self
            .parts
            .last()
            .cloned()
            .unwrap_or_else(|| self.mail.tree().clone());
        let below: Vec<message::mime::Entity> = crate::mail::subtree(&current)
            .into_iter()
            .skip(1)
            .cloned()
            .collect();
        for part in below {
            self.parts.push(part);
            let flow = self.block(body, scope).await;
            self.parts.pop();
            match flow? {
                Flow::Next => {}
                Flow::Break(None) => break,
                Flow::Break(Some(n)) if Some(&n) == name.as_ref() => break,
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }
}

fn merge(into: &mut Vec<String>, more: &[String]) {
    for f in more {
        if !into.iter().any(|x| x.eq_ignore_ascii_case(f)) {
            into.push(f.clone());
        }
    }
}

/// RFC 5228 §4.1: the mailbox name as the store knows it (INBOX in any
/// case is INBOX).
fn mailbox_name(name: &str) -> R<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 1000 || name.chars().any(char::is_control) {
        return Err(format!("fileinto: bad mailbox name {name:?}"));
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    Ok(name.to_string())
}

/// RFC 5228 §4.2: one address (a `<...>` around it is allowed).
fn redirect_address(text: &str) -> R<String> {
    message::Mailbox::parse(crate::compile::unbracket(text))
        .map(|m| m.to_string())
        .map_err(|_| format!("redirect: {text:?} is not an address"))
}

fn field_name(name: &str) -> R<()> {
    if name.is_empty()
        || name.len() > 200
        || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
    {
        return Err(format!("{name:?} is not a header field name"));
    }
    Ok(())
}

fn is_protected(name: &str) -> bool {
    PROTECTED_FIELDS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
}

/// RFC 5229 §4.1.
fn modify(m: Modifier, v: &str) -> String {
    match m {
        Modifier::Lower => v.to_lowercase(),
        Modifier::Upper => v.to_uppercase(),
        Modifier::LowerFirst | Modifier::UpperFirst => {
            let mut c = v.chars();
            match c.next() {
                Some(first) => {
                    let f: String = match m {
                        Modifier::LowerFirst => first.to_lowercase().collect(),
                        _ => first.to_uppercase().collect(),
                    };
                    f + c.as_str()
                }
                None => String::new(),
            }
        }
        Modifier::QuoteWildcard => crate::compare::quote_wildcards(v),
        Modifier::Length => v.chars().count().to_string(),
    }
}

pub(super) fn split_flags(s: &str) -> Vec<String> {
    normalize_flags(&[s.to_string()])
}

/// RFC 5232 §3: flags are space separated, compared without case; system
/// flags are the five of IMAP (RFC 9051 §2.3.2), keywords IMAP atoms;
/// anything else is dropped.
pub(super) fn normalize_flags(list: &[String]) -> Vec<String> {
    const SYSTEM: &[&str] = &["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    let mut out: Vec<String> = Vec::new();
    for f in list.iter().flat_map(|s| s.split_whitespace()) {
        let flag = if f.starts_with('\\') {
            match SYSTEM.iter().find(|s| s.eq_ignore_ascii_case(f)) {
                Some(s) => s.to_string(),
                None => continue,
            }
        } else if f.len() <= 100
            && f.bytes()
                .all(|b| b > 32 && b < 127 && !b"(){%*\"\\]".contains(&b))
        {
            f.to_string()
        } else {
            continue;
        };
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&flag)) {
            out.push(flag);
        }
    }
    out
}

fn apply_flags(current: Vec<String>, op: FlagOp, flags: Vec<String>) -> Vec<String> {
    match op {
        FlagOp::Set => flags,
        FlagOp::Add => {
            let mut out = current;
            merge(&mut out, &flags);
            out
        }
        FlagOp::Remove => current
            .into_iter()
            .filter(|c| !flags.iter().any(|f| f.eq_ignore_ascii_case(c)))
            .collect(),
    }
}
