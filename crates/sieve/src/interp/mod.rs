//! Running checked scripts on one message for one user (RFC 5228 §2.10).
//!
//! A run collects actions and performs none; its cost is bounded by
//! [`Limits`](crate::Limits): steps, actions, redirects, include depth,
//! variable sizes, and the pattern engine's own bounds. A runtime error
//! throws away what the run decided and leaves the implicit keep
//! (RFC 5228 §2.10.6): the user gets the message, as without a script.

mod act;
mod check;

pub(crate) use check::tracking_key;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use message::mime::Entity;

use crate::action::{Action, Content, Context, Host, Outcome, Tracked};
use crate::compare::Patterns;
use crate::ir::{Command, Part, Script, Str};
use crate::mail::Mail;

type R<T> = Result<T, String>;
type Boxed<'b, T> = Pin<Box<dyn Future<Output = R<T>> + Send + 'b>>;

/// How a block ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flow {
    Next,
    Stop,
    /// RFC 6609 §3.3: back to the including script.
    Return,
    /// RFC 5703 §3.2: out of the (named) loop.
    Break(Option<String>),
}

/// Run `scripts` one after the other (the site's script before the
/// user's), as one run: `stop` in any ends them all, and the implicit keep
/// stands unless some action cancelled it.
pub async fn run(
    scripts: &[Arc<Script>],
    mail: impl Into<Mail>,
    ctx: &Context,
    host: &dyn Host,
) -> Outcome {
    let mut r = Run::new(ctx, host, mail.into());
    let mut error = None;
    for script in scripts {
        let mut scope = Scope::default();
        match r.block(&script.commands, &mut scope).await {
            Ok(Flow::Stop) => break,
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if let Some(e) = error {
        return Outcome {
            actions: vec![Action::Keep {
                flags: Vec::new(),
                content: None,
                implicit: true,
            }],
            track: Vec::new(),
            error: Some(e),
        };
    }
    r.finish()
}

/// One script's variables (RFC 5229 §3; RFC 6609 §3.4: each included
/// script has its own, but those declared `global`).
#[derive(Default)]
struct Scope {
    vars: HashMap<String, String>,
    shared: HashSet<String>,
}

struct Run<'a> {
    ctx: &'a Context,
    host: &'a dyn Host,
    mail: Mail,
    /// The edited message as bytes, made once per edit.
    snapshot: Content,
    patterns: Patterns,
    /// `${0}`.. of the last successful `:matches`/`:regex` (RFC 5229 §3.2).
    matches: Vec<String>,
    globals: HashMap<String, String>,
    /// RFC 5232 §3: the internal flags variable.
    flags: Vec<String>,
    actions: Vec<Action>,
    keep_cancelled: bool,
    redirects: usize,
    notifications: usize,
    vacation_done: bool,
    track: Vec<Tracked>,
    /// Duplicate ids tested in this run and their answer.
    duplicates: HashMap<String, bool>,
    /// Scripts included with `:once` or at all, and the chain now running.
    included: HashSet<(bool, String)>,
    chain: Vec<(bool, String)>,
    /// `foreverypart` nesting: the part each loop is on.
    parts: Vec<Entity>,
    /// Body texts by transform and content types, decoded once.
    bodies: HashMap<(crate::ir::BodyTransform, Vec<String>), Arc<Vec<String>>>,
    steps: usize,
}

impl<'a> Run<'a> {
    fn new(ctx: &'a Context, host: &'a dyn Host, mail: Mail) -> Run<'a> {
        Run {
            ctx,
            host,
            mail,
            snapshot: None,
            patterns: Patterns::default(),
            matches: Vec::new(),
            globals: HashMap::new(),
            flags: Vec::new(),
            actions: Vec::new(),
            keep_cancelled: false,
            redirects: 0,
            notifications: 0,
            vacation_done: false,
            track: Vec::new(),
            duplicates: HashMap::new(),
            included: HashSet::new(),
            chain: Vec::new(),
            parts: Vec::new(),
            bodies: HashMap::new(),
            steps: 0,
        }
    }

    fn finish(mut self) -> Outcome {
        if !self.keep_cancelled {
            let content = self.content();
            self.actions.push(Action::Keep {
                flags: self.flags.clone(),
                content,
                implicit: true,
            });
        }
        Outcome {
            actions: self.actions,
            track: self.track,
            error: None,
        }
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.ctx.limits.max_steps {
            return Err(format!(
                "the script ran more than {} steps",
                self.ctx.limits.max_steps
            ));
        }
        Ok(())
    }

    /// The message as an action takes it now.
    fn content(&mut self) -> Content {
        if !self.mail.is_edited() {
            return None;
        }
        if self.snapshot.is_none() {
            self.snapshot = Some(Arc::new(self.mail.edited()));
        }
        self.snapshot.clone()
    }

    fn block<'b>(&'b mut self, commands: &'b [Command], scope: &'b mut Scope) -> Boxed<'b, Flow> {
        Box::pin(async move {
            for c in commands {
                self.step()?;
                match self.command(c, scope).await? {
                    Flow::Next => {}
                    other => return Ok(other),
                }
            }
            Ok(Flow::Next)
        })
    }

    /// RFC 5229 §3: `${name}` and `${N}` replaced; unknown ones are empty.
    fn expand(&self, s: &Str, scope: &Scope) -> String {
        let mut out = String::new();
        for p in &s.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(name) => out.push_str(self.variable(name, scope)),
                Part::Match(n) => {
                    out.push_str(self.matches.get(*n).map(String::as_str).unwrap_or(""))
                }
            }
        }
        out
    }

    fn expand_all(&self, list: &[Str], scope: &Scope) -> Vec<String> {
        list.iter().map(|s| self.expand(s, scope)).collect()
    }

    fn variable<'s>(&'s self, name: &str, scope: &'s Scope) -> &'s str {
        let found = match name.strip_prefix("global.") {
            Some(g) => self.globals.get(g),
            None if scope.shared.contains(name) => self.globals.get(name),
            None => scope.vars.get(name),
        };
        found.map(String::as_str).unwrap_or("")
    }

    fn set_variable(&mut self, name: &str, mut value: String, scope: &mut Scope) -> R<()> {
        let max = self.ctx.limits.max_variable_size;
        if value.len() > max {
            let mut end = max;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
        let (map, key) = match name.strip_prefix("global.") {
            Some(g) => (&mut self.globals, g),
            None if scope.shared.contains(name) => (&mut self.globals, name),
            None => (&mut scope.vars, name),
        };
        if !map.contains_key(key) && map.len() >= self.ctx.limits.max_variables {
            return Err(format!(
                "more than {} variables",
                self.ctx.limits.max_variables
            ));
        }
        map.insert(key.to_string(), value);
        Ok(())
    }
}
