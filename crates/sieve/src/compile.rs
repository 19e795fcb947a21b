//! From the generic grammar to a checked [`Script`]: every command and test
//! known (RFC 5228 §4, §5 and each extension's), arguments of the right
//! kinds, each extension used only when required (§3.2), `require` before
//! anything else, `elsif`/`else` after an `if`. A script is checked whole
//! when it is uploaded; every error names its line and column.

use std::collections::BTreeSet;

use crate::error::{Position, SyntaxError};
use crate::grammar::{Argument, RawCommand, RawTest};
use crate::ir::*;

/// The extensions Tern implements, as `require` and ManageSieve name them.
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "vacation",
    "vacation-seconds",
    "imap4flags",
    "variables",
    "body",
    "relational",
    "comparator-i;ascii-numeric",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "subaddress",
    "copy",
    "include",
    "mailbox",
    "date",
    "index",
    "editheader",
    "duplicate",
    "spamtest",
    "spamtestplus",
    "environment",
    "regex",
    "mime",
    "foreverypart",
    "enotify",
];

/// Parse and check a script.
pub fn compile(text: &str) -> Result<Script, SyntaxError> {
    let tokens = crate::lexer::tokens(text)?;
    let raw = crate::grammar::parse(&tokens, crate::lexer::end_of(text))?;
    let mut c = Checker::default();
    let commands = c.block(&raw, &Frame::top())?;
    Ok(Script {
        requires: c.requires.into_iter().collect(),
        commands,
    })
}

#[derive(Default)]
struct Checker {
    requires: BTreeSet<String>,
}

/// Where a block is: for `require` placement and `break`.
#[derive(Clone)]
struct Frame {
    top: bool,
    loops: Vec<Option<String>>,
}

impl Frame {
    fn top() -> Frame {
        Frame {
            top: true,
            loops: Vec::new(),
        }
    }

    fn inner(&self) -> Frame {
        Frame {
            top: false,
            loops: self.loops.clone(),
        }
    }
}

/// The arguments of one command or test, consumed in order.
struct Args<'a> {
    list: &'a [(Argument, Position)],
    i: usize,
    at: Position,
    what: &'a str,
}

impl<'a> Args<'a> {
    fn new(list: &'a [(Argument, Position)], at: Position, what: &'a str) -> Args<'a> {
        Args {
            list,
            i: 0,
            at,
            what,
        }
    }

    fn here(&self) -> Position {
        self.list.get(self.i).map(|a| a.1).unwrap_or(self.at)
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError::new(
            self.here(),
            format!("{}: {}", self.what, msg.into()),
        ))
    }

    fn peek_tag(&self) -> Option<&'a str> {
        match self.list.get(self.i) {
            Some((Argument::Tag(t), _)) => Some(t.as_str()),
            _ => None,
        }
    }

    fn next_tag(&mut self) -> Option<(&'a str, Position)> {
        let t = self.peek_tag()?;
        let at = self.here();
        self.i += 1;
        Some((t, at))
    }

    fn strings(&mut self) -> Result<(Vec<String>, Position), SyntaxError> {
        match self.list.get(self.i) {
            Some((Argument::Strings(s), at)) => {
                self.i += 1;
                Ok((s.clone(), *at))
            }
            _ => self.err("expected a string or a string list"),
        }
    }

    fn string(&mut self) -> Result<(String, Position), SyntaxError> {
        let (list, at) = self.strings()?;
        match <[String; 1]>::try_from(list) {
            Ok([one]) => Ok((one, at)),
            Err(_) => Err(SyntaxError::new(
                at,
                format!("{}: expected one string, not a list", self.what),
            )),
        }
    }

    fn number(&mut self) -> Result<u64, SyntaxError> {
        match self.list.get(self.i) {
            Some((Argument::Number(n), _)) => {
                self.i += 1;
                Ok(*n)
            }
            _ => self.err("expected a number"),
        }
    }

    fn done(&self) -> Result<(), SyntaxError> {
        if self.i < self.list.len() {
            return self.err("too many arguments");
        }
        Ok(())
    }
}

/// The tags shared by tests: comparator, match type, address part, index,
/// and MIME options (RFC 5228 §2.7, RFC 5231, RFC 5233, RFC 5260 §6, RFC 5703).
#[derive(Default)]
struct Common {
    comparator: Option<Comparator>,
    kind: Option<MatchType>,
    part: Option<AddressPart>,
    index: Option<usize>,
    last: bool,
    mime: MimeOpts,
}

impl Common {
    fn matcher(&self) -> Matcher {
        let kind = self.kind.clone().unwrap_or(MatchType::Is);
        // RFC 5231 §4: :count and :value default to i;ascii-casemap too.
        Matcher {
            comparator: self.comparator.unwrap_or(Comparator::AsciiCasemap),
            kind,
        }
    }

    fn index(&self) -> Option<Index> {
        self.index.map(|n| Index { n, last: self.last })
    }
}

impl Checker {
    fn need(&self, ext: &str, at: Position) -> Result<(), SyntaxError> {
        if self.requires.contains(ext) {
            Ok(())
        } else {
            Err(SyntaxError::new(
                at,
                format!("\"{ext}\" is used without require \"{ext}\""),
            ))
        }
    }

    fn has(&self, ext: &str) -> bool {
        self.requires.contains(ext)
    }

    /// RFC 5228 §2.4.2.4 (encoded-character) and RFC 5229 §3 (variables).
    fn str(&self, s: &str, at: Position) -> Result<Str, SyntaxError> {
        let decoded;
        let s = if self.has("encoded-character") {
            decoded = decode_encoded_characters(s).map_err(|m| SyntaxError::new(at, m))?;
            decoded.as_str()
        } else {
            s
        };
        if !self.has("variables") {
            return Ok(Str::literal(s));
        }
        Ok(parse_variables(s))
    }

    fn strs(&self, list: &[String], at: Position) -> Result<StrList, SyntaxError> {
        list.iter().map(|s| self.str(s, at)).collect()
    }

    /// One tag of [`Common`], if `tag` is one; Ok(false) when it is not.
    fn common_tag(
        &self,
        tag: &str,
        at: Position,
        a: &mut Args<'_>,
        c: &mut Common,
        allow: &str,
    ) -> Result<bool, SyntaxError> {
        let allowed = |group: char| allow.contains(group);
        let once = |taken: bool| {
            if taken {
                Err(SyntaxError::new(at, format!(":{tag} given twice")))
            } else {
                Ok(())
            }
        };
        match tag {
            "is" | "contains" | "matches" | "regex" | "value" | "count" if allowed('m') => {
                once(c.kind.is_some())?;
                c.kind = Some(match tag {
                    "is" => MatchType::Is,
                    "contains" => MatchType::Contains,
                    "matches" => MatchType::Matches,
                    "regex" => {
                        self.need("regex", at)?;
                        MatchType::Regex
                    }
                    _ => {
                        self.need("relational", at)?;
                        let (op, op_at) = a.string()?;
                        let rel = relation(&op).ok_or_else(|| {
                            SyntaxError::new(op_at, format!("unknown relational operator {op:?}"))
                        })?;
                        if tag == "value" {
                            MatchType::Value(rel)
                        } else {
                            MatchType::Count(rel)
                        }
                    }
                });
            }
            "comparator" if allowed('m') => {
                once(c.comparator.is_some())?;
                let (name, name_at) = a.string()?;
                c.comparator = Some(match name.to_ascii_lowercase().as_str() {
                    "i;octet" => Comparator::Octet,
                    "i;ascii-casemap" => Comparator::AsciiCasemap,
                    "i;ascii-numeric" => {
                        self.need("comparator-i;ascii-numeric", name_at)?;
                        Comparator::AsciiNumeric
                    }
                    _ => {
                        return Err(SyntaxError::new(
                            name_at,
                            format!("unknown comparator {name:?}"),
                        ));
                    }
                });
            }
            "all" | "localpart" | "domain" | "user" | "detail" if allowed('a') => {
                once(c.part.is_some())?;
                c.part = Some(match tag {
                    "all" => AddressPart::All,
                    "localpart" => AddressPart::LocalPart,
                    "domain" => AddressPart::Domain,
                    "user" => {
                        self.need("subaddress", at)?;
                        AddressPart::User
                    }
                    _ => {
                        self.need("subaddress", at)?;
                        AddressPart::Detail
                    }
                });
            }
            "index" if allowed('i') => {
                self.need("index", at)?;
                once(c.index.is_some())?;
                let n = a.number()?;
                if n == 0 {
                    return Err(SyntaxError::new(at, ":index counts from 1"));
                }
                c.index = Some(n as usize);
            }
            "last" if allowed('i') => {
                self.need("index", at)?;
                c.last = true;
            }
            "mime" if allowed('x') => {
                self.need("mime", at)?;
                c.mime.mime = true;
            }
            "anychild" if allowed('x') => {
                self.need("mime", at)?;
                c.mime.anychild = true;
            }
            "type" | "subtype" | "contenttype" | "param" if allowed('x') => {
                self.need("mime", at)?;
                if c.mime.piece.is_some() {
                    return Err(SyntaxError::new(
                        at,
                        "only one of :type :subtype :contenttype :param",
                    ));
                }
                c.mime.piece = Some(match tag {
                    "type" => MimePiece::Type,
                    "subtype" => MimePiece::Subtype,
                    "contenttype" => MimePiece::ContentType,
                    _ => MimePiece::Param(a.strings()?.0),
                });
            }
            _ => return Ok(false),
        }
        // RFC 4790 §9.1: i;ascii-numeric orders and compares, it has no substrings.
        if c.comparator == Some(Comparator::AsciiNumeric)
            && matches!(
                c.kind,
                Some(MatchType::Contains | MatchType::Matches | MatchType::Regex)
            )
        {
            return Err(SyntaxError::new(
                at,
                "i;ascii-numeric cannot do :contains, :matches or :regex",
            ));
        }
        Ok(true)
    }

    /// Tags in any order, then what is left for the positional arguments.
    fn take_common(&self, a: &mut Args<'_>, allow: &str) -> Result<Common, SyntaxError> {
        let mut c = Common::default();
        while let Some(tag) = a.peek_tag() {
            let at = a.here();
            a.i += 1;
            if !self.common_tag(tag, at, a, &mut c, allow)? {
                return Err(SyntaxError::new(
                    at,
                    format!("{}: unknown tag :{tag}", a.what),
                ));
            }
        }
        if c.last && c.index.is_none() {
            return Err(SyntaxError::new(a.at, ":last needs :index"));
        }
        if (c.mime.anychild || c.mime.piece.is_some()) && !c.mime.mime {
            return Err(SyntaxError::new(
                a.at,
                ":anychild, :type, :subtype, :contenttype and :param need :mime",
            ));
        }
        Ok(c)
    }

    fn block(&mut self, raw: &[RawCommand], frame: &Frame) -> Result<Vec<Command>, SyntaxError> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut requires_allowed = frame.top;
        while i < raw.len() {
            let c = &raw[i];
            if c.name == "require" {
                if !requires_allowed {
                    return Err(SyntaxError::new(
                        c.at,
                        "require must come before any other command",
                    ));
                }
                self.require(c)?;
                i += 1;
                continue;
            }
            requires_allowed = false;
            if c.name == "if" {
                let mut branches = vec![(self.one_test(c)?, self.body(c, frame)?)];
                let mut otherwise = None;
                i += 1;
                while let Some(next) = raw.get(i) {
                    match next.name.as_str() {
                        "elsif" => {
                            branches.push((self.one_test(next)?, self.body(next, frame)?));
                            i += 1;
                        }
                        "else" => {
                            no_arguments(next)?;
                            otherwise = Some(self.body(next, frame)?);
                            i += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                out.push(Command::If {
                    branches,
                    otherwise,
                });
                continue;
            }
            if c.name == "elsif" || c.name == "else" {
                return Err(SyntaxError::new(
                    c.at,
                    format!("{} without a preceding if", c.name),
                ));
            }
            out.push(self.command(c, frame)?);
            i += 1;
        }
        Ok(out)
    }

    fn body(&mut self, c: &RawCommand, frame: &Frame) -> Result<Vec<Command>, SyntaxError> {
        match &c.block {
            Some(b) => self.block(b, &frame.inner()),
            None => Err(SyntaxError::new(c.at, format!("{} needs a block", c.name))),
        }
    }

    fn one_test(&self, c: &RawCommand) -> Result<Test, SyntaxError> {
        if !c.arguments.is_empty() {
            return Err(SyntaxError::new(
                c.at,
                format!("{} takes a test, not arguments", c.name),
            ));
        }
        match c.tests.as_slice() {
            [t] => self.test(t),
            _ => Err(SyntaxError::new(c.at, format!("{} needs one test", c.name))),
        }
    }

    fn require(&mut self, c: &RawCommand) -> Result<(), SyntaxError> {
        let mut a = Args::new(&c.arguments, c.at, "require");
        let (names, at) = a.strings()?;
        a.done()?;
        if c.block.is_some() || !c.tests.is_empty() {
            return Err(SyntaxError::new(c.at, "require takes only a string list"));
        }
        for name in names {
            let lower = name.to_ascii_lowercase();
            if !EXTENSIONS.contains(&lower.as_str()) {
                return Err(SyntaxError::new(
                    at,
                    format!("unsupported extension {name:?}"),
                ));
            }
            // RFC 5235 §3.2: spamtestplus includes spamtest; RFC 6131: vacation-seconds, vacation.
            if lower == "spamtestplus" {
                self.requires.insert("spamtest".into());
            }
            if lower == "vacation-seconds" {
                self.requires.insert("vacation".into());
            }
            self.requires.insert(lower);
        }
        Ok(())
    }

    fn command(&mut self, c: &RawCommand, frame: &Frame) -> Result<Command, SyntaxError> {
        let takes_block = matches!(c.name.as_str(), "foreverypart");
        if c.block.is_some() && !takes_block {
            return Err(SyntaxError::new(c.at, format!("{} takes no block", c.name)));
        }
        if !c.tests.is_empty() {
            return Err(SyntaxError::new(c.at, format!("{} takes no test", c.name)));
        }
        let mut a = Args::new(&c.arguments, c.at, &c.name);
        let cmd = match c.name.as_str() {
            "stop" => Command::Stop,
            "discard" => Command::Discard,
            "keep" => Command::Keep {
                flags: self.flags_tag(&mut a)?,
            },
            "redirect" => {
                let mut copy = false;
                while let Some((tag, at)) = a.next_tag() {
                    match tag {
                        "copy" => {
                            self.need("copy", at)?;
                            copy = true;
                        }
                        _ => return a.err(format!("unknown tag :{tag}")),
                    }
                }
                let (addr, at) = a.string()?;
                let address = self.str(&addr, at)?;
                if let Some(lit) = address.as_literal()
                    && message::Mailbox::parse(unbracket(&lit)).is_err()
                {
                    return Err(SyntaxError::new(
                        at,
                        format!("redirect: {lit:?} is not an address"),
                    ));
                }
                Command::Redirect { address, copy }
            }
            "fileinto" => {
                self.need("fileinto", c.at)?;
                let (mut copy, mut flags, mut create) = (false, None, false);
                while let Some((tag, at)) = a.next_tag() {
                    match tag {
                        "copy" => {
                            self.need("copy", at)?;
                            copy = true;
                        }
                        "flags" => {
                            self.need("imap4flags", at)?;
                            let (l, lat) = a.strings()?;
                            flags = Some(self.strs(&l, lat)?);
                        }
                        "create" => {
                            self.need("mailbox", at)?;
                            create = true;
                        }
                        _ => return a.err(format!("unknown tag :{tag}")),
                    }
                }
                let (name, at) = a.string()?;
                Command::FileInto {
                    mailbox: self.str(&name, at)?,
                    copy,
                    flags,
                    create,
                }
            }
            "reject" | "ereject" => {
                self.need(&c.name, c.at)?;
                let (reason, at) = a.string()?;
                Command::Reject {
                    reason: self.str(&reason, at)?,
                    extended: c.name == "ereject",
                }
            }
            "vacation" => self.vacation(&mut a, c.at)?,
            "setflag" | "addflag" | "removeflag" => {
                self.need("imap4flags", c.at)?;
                let op = match c.name.as_str() {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                let (first, at) = a.strings()?;
                let (variable, flags) = match a.list.get(a.i) {
                    Some((Argument::Strings(_), _)) => {
                        let (flags, fat) = a.strings()?;
                        let [var] = <[String; 1]>::try_from(first)
                            .map_err(|_| SyntaxError::new(at, "the variable name is one string"))?;
                        self.need("variables", at)?;
                        (Some(self.str(&var, at)?), self.strs(&flags, fat)?)
                    }
                    _ => (None, self.strs(&first, at)?),
                };
                Command::Flags {
                    op,
                    variable,
                    flags,
                }
            }
            "set" => self.set(&mut a, c.at)?,
            "addheader" => {
                self.need("editheader", c.at)?;
                let mut last = false;
                while let Some((tag, _)) = a.next_tag() {
                    match tag {
                        "last" => last = true,
                        _ => return a.err(format!("unknown tag :{tag}")),
                    }
                }
                let (name, nat) = a.string()?;
                let (value, vat) = a.string()?;
                check_header_name(&name, nat)?;
                Command::AddHeader {
                    last,
                    name: self.str(&name, nat)?,
                    value: self.str(&value, vat)?,
                }
            }
            "deleteheader" => {
                self.need("editheader", c.at)?;
                let mut common = Common::default();
                while let Some(tag) = a.peek_tag() {
                    let at = a.here();
                    a.i += 1;
                    let handled = match tag {
                        "index" => {
                            let n = a.number()?;
                            if n == 0 {
                                return Err(SyntaxError::new(at, ":index counts from 1"));
                            }
                            common.index = Some(n as usize);
                            true
                        }
                        "last" => {
                            common.last = true;
                            true
                        }
                        _ => self.common_tag(tag, at, &mut a, &mut common, "m")?,
                    };
                    if !handled {
                        return Err(SyntaxError::new(
                            at,
                            format!("deleteheader: unknown tag :{tag}"),
                        ));
                    }
                }
                let (name, nat) = a.string()?;
                check_header_name(&name, nat)?;
                let patterns = match a.list.get(a.i) {
                    Some(_) => {
                        let (p, pat) = a.strings()?;
                        Some(self.strs(&p, pat)?)
                    }
                    None => None,
                };
                Command::DeleteHeader {
                    index: common.index(),
                    matcher: common.matcher(),
                    name: self.str(&name, nat)?,
                    patterns,
                }
            }
            "notify" => self.notify(&mut a, c.at)?,
            "include" => {
                self.need("include", c.at)?;
                let (mut global, mut once, mut optional) = (false, false, false);
                while let Some((tag, _)) = a.next_tag() {
                    match tag {
                        "global" => global = true,
                        "personal" => global = false,
                        "once" => once = true,
                        "optional" => optional = true,
                        _ => return a.err(format!("unknown tag :{tag}")),
                    }
                }
                let (name, at) = a.string()?;
                if name.contains('/') || name.is_empty() {
                    return Err(SyntaxError::new(
                        at,
                        format!("include: bad script name {name:?}"),
                    ));
                }
                Command::Include {
                    global,
                    once,
                    optional,
                    name: self.str(&name, at)?,
                }
            }
            "return" => {
                self.need("include", c.at)?;
                Command::Return
            }
            "global" => {
                self.need("include", c.at)?;
                self.need("variables", c.at)?;
                Command::Global(
                    a.strings()?
                        .0
                        .into_iter()
                        .map(|s| s.to_ascii_lowercase())
                        .collect(),
                )
            }
            "foreverypart" => {
                self.need("foreverypart", c.at)?;
                let mut name = None;
                while let Some((tag, _)) = a.next_tag() {
                    match tag {
                        "name" => name = Some(a.string()?.0),
                        _ => return a.err(format!("unknown tag :{tag}")),
                    }
                }
                a.done()?;
                let mut inner = frame.inner();
                inner.loops.push(name.clone());
                let body = match &c.block {
                    Some(b) => self.block(b, &inner)?,
                    None => return Err(SyntaxError::new(c.at, "foreverypart needs a block")),
                };
                return Ok(Command::ForEveryPart { name, body });
            }
            "break" => {
                self.need("foreverypart", c.at)?;
                let mut name = None;
                while let Some((tag, _)) = a.next_tag() {
                    match tag {
                        "name" => name = Some(a.string()?.0),
                        _ => return a.err(format!("unknown tag :{tag}")),
                    }
                }
                let inside = match &name {
                    None => !frame.loops.is_empty(),
                    Some(n) => frame.loops.iter().any(|l| l.as_deref() == Some(n.as_str())),
                };
                if !inside {
                    return Err(SyntaxError::new(
                        c.at,
                        "break outside a matching foreverypart",
                    ));
                }
                Command::Break { name }
            }
            other => return Err(SyntaxError::new(c.at, format!("unknown command {other:?}"))),
        };
        a.done()?;
        Ok(cmd)
    }

    /// `:flags [list]` of keep (RFC 5232 §5).
    fn flags_tag(&self, a: &mut Args<'_>) -> Result<Option<StrList>, SyntaxError> {
        let mut flags = None;
        while let Some((tag, at)) = a.next_tag() {
            match tag {
                "flags" => {
                    self.need("imap4flags", at)?;
                    let (l, lat) = a.strings()?;
                    flags = Some(self.strs(&l, lat)?);
                }
                _ => return a.err(format!("unknown tag :{tag}")),
            }
        }
        Ok(flags)
    }

    /// RFC 5230 §4, RFC 6131.
    fn vacation(&self, a: &mut Args<'_>, at: Position) -> Result<Command, SyntaxError> {
        self.need("vacation", at)?;
        let mut v = Vacation {
            seconds: 7 * 86_400,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: Str::default(),
        };
        while let Some((tag, tat)) = a.next_tag() {
            match tag {
                "days" => {
                    // RFC 5230 §4.1: at least one day; more than 30 the site may cap.
                    v.seconds = a.number()?.clamp(1, 90) * 86_400;
                }
                "seconds" => {
                    self.need("vacation-seconds", tat)?;
                    v.seconds = a.number()?.min(90 * 86_400);
                }
                "subject" => {
                    let (s, sat) = a.string()?;
                    v.subject = Some(self.str(&s, sat)?);
                }
                "from" => {
                    let (s, sat) = a.string()?;
                    v.from = Some(self.str(&s, sat)?);
                }
                "addresses" => {
                    let (l, lat) = a.strings()?;
                    v.addresses = self.strs(&l, lat)?;
                }
                "mime" => v.mime = true,
                "handle" => {
                    let (s, sat) = a.string()?;
                    v.handle = Some(self.str(&s, sat)?);
                }
                _ => return a.err(format!("unknown tag :{tag}")),
            }
        }
        let (reason, rat) = a.string()?;
        v.reason = self.str(&reason, rat)?;
        Ok(Command::Vacation(Box::new(v)))
    }

    /// RFC 5229 §4.
    fn set(&self, a: &mut Args<'_>, at: Position) -> Result<Command, SyntaxError> {
        self.need("variables", at)?;
        let mut modifiers = Vec::new();
        while let Some((tag, tat)) = a.next_tag() {
            let m = match tag {
                "lower" => Modifier::Lower,
                "upper" => Modifier::Upper,
                "lowerfirst" => Modifier::LowerFirst,
                "upperfirst" => Modifier::UpperFirst,
                "quotewildcard" => Modifier::QuoteWildcard,
                "length" => Modifier::Length,
                _ => {
                    return Err(SyntaxError::new(
                        tat,
                        format!("set: unknown modifier :{tag}"),
                    ));
                }
            };
            if modifiers.contains(&m) {
                return Err(SyntaxError::new(tat, format!("set: :{tag} given twice")));
            }
            modifiers.push(m);
        }
        // §4.1: one of :lower/:upper and one of :lowerfirst/:upperfirst at most.
        if modifiers.contains(&Modifier::Lower) && modifiers.contains(&Modifier::Upper)
            || modifiers.contains(&Modifier::LowerFirst)
                && modifiers.contains(&Modifier::UpperFirst)
        {
            return Err(SyntaxError::new(at, "set: conflicting modifiers"));
        }
        modifiers.sort();
        let (name, nat) = a.string()?;
        if !valid_variable_name(&name) {
            return Err(SyntaxError::new(
                nat,
                format!("set: {name:?} is not a variable name"),
            ));
        }
        let (value, vat) = a.string()?;
        Ok(Command::Set {
            name: name.to_ascii_lowercase(),
            value: self.str(&value, vat)?,
            modifiers,
        })
    }

    /// RFC 5435 §3.
    fn notify(&self, a: &mut Args<'_>, at: Position) -> Result<Command, SyntaxError> {
        self.need("enotify", at)?;
        let (mut from, mut importance, mut options, mut message) = (None, None, Vec::new(), None);
        while let Some((tag, _)) = a.next_tag() {
            let (s, sat) = match tag {
                "options" => {
                    let (l, lat) = a.strings()?;
                    options = self.strs(&l, lat)?;
                    continue;
                }
                "from" | "importance" | "message" => a.string()?,
                _ => return a.err(format!("unknown tag :{tag}")),
            };
            let v = Some(self.str(&s, sat)?);
            match tag {
                "from" => from = v,
                "importance" => {
                    if !matches!(s.as_str(), "1" | "2" | "3") && !s.contains('$') {
                        return Err(SyntaxError::new(sat, "notify: :importance is 1, 2 or 3"));
                    }
                    importance = v
                }
                _ => message = v,
            }
        }
        let (method, mat) = a.string()?;
        if !method.contains('$') && !method.to_ascii_lowercase().starts_with("mailto:") {
            return Err(SyntaxError::new(
                mat,
                format!("notify: unsupported method {method:?} (Tern supports mailto)"),
            ));
        }
        Ok(Command::Notify {
            method: self.str(&method, mat)?,
            from,
            importance,
            options,
            message,
        })
    }

    fn test(&self, t: &RawTest) -> Result<Test, SyntaxError> {
        let mut a = Args::new(&t.arguments, t.at, &t.name);
        let no_tests = |t: &RawTest| {
            if t.tests.is_empty() {
                Ok(())
            } else {
                Err(SyntaxError::new(
                    t.at,
                    format!("{} takes no test list", t.name),
                ))
            }
        };
        let test = match t.name.as_str() {
            "true" | "false" => {
                no_tests(t)?;
                a.done()?;
                return Ok(if t.name == "true" {
                    Test::True
                } else {
                    Test::False
                });
            }
            "not" => {
                a.done()?;
                return match t.tests.as_slice() {
                    [inner] => Ok(Test::Not(Box::new(self.test(inner)?))),
                    _ => Err(SyntaxError::new(t.at, "not takes one test")),
                };
            }
            "allof" | "anyof" => {
                a.done()?;
                if t.tests.is_empty() {
                    return Err(SyntaxError::new(t.at, format!("{} needs tests", t.name)));
                }
                let tests = t
                    .tests
                    .iter()
                    .map(|x| self.test(x))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if t.name == "allof" {
                    Test::AllOf(tests)
                } else {
                    Test::AnyOf(tests)
                });
            }
            _ => {
                no_tests(t)?;
                self.simple_test(t, &mut a)?
            }
        };
        a.done()?;
        check_regex_keys(&test, t.at)?;
        Ok(test)
    }

    fn simple_test(&self, t: &RawTest, a: &mut Args<'_>) -> Result<Test, SyntaxError> {
        Ok(match t.name.as_str() {
            "address" => {
                let c = self.take_common(a, "maix")?;
                let (h, hat) = a.strings()?;
                let (k, kat) = a.strings()?;
                Test::Address {
                    part: c.part.unwrap_or_default(),
                    matcher: c.matcher(),
                    headers: self.strs(&h, hat)?,
                    keys: self.strs(&k, kat)?,
                    index: c.index(),
                    mime: c.mime,
                }
            }
            "envelope" => {
                self.need("envelope", t.at)?;
                let c = self.take_common(a, "ma")?;
                let (f, fat) = a.strings()?;
                let (k, kat) = a.strings()?;
                Test::Envelope {
                    part: c.part.unwrap_or_default(),
                    matcher: c.matcher(),
                    fields: self.strs(&f, fat)?,
                    keys: self.strs(&k, kat)?,
                }
            }
            "header" => {
                let c = self.take_common(a, "mix")?;
                let (h, hat) = a.strings()?;
                let (k, kat) = a.strings()?;
                Test::Header {
                    matcher: c.matcher(),
                    headers: self.strs(&h, hat)?,
                    keys: self.strs(&k, kat)?,
                    index: c.index(),
                    mime: c.mime,
                }
            }
            "exists" => {
                let c = self.take_common(a, "x")?;
                let (h, hat) = a.strings()?;
                Test::Exists {
                    headers: self.strs(&h, hat)?,
                    mime: c.mime,
                }
            }
            "size" => {
                let over = match a.next_tag() {
                    Some(("over", _)) => true,
                    Some(("under", _)) => false,
                    _ => return a.err("expected :over or :under"),
                };
                Test::Size {
                    over,
                    limit: a.number()?,
                }
            }
            "body" => {
                self.need("body", t.at)?;
                let mut c = Common::default();
                let mut transform = None;
                let mut types = Vec::new();
                while let Some(tag) = a.peek_tag() {
                    let at = a.here();
                    a.i += 1;
                    match tag {
                        "raw" | "text" | "content" if transform.is_none() => {
                            transform = Some(match tag {
                                "raw" => BodyTransform::Raw,
                                "text" => BodyTransform::Text,
                                _ => {
                                    let (l, lat) = a.strings()?;
                                    types = self.strs(&l, lat)?;
                                    BodyTransform::Content
                                }
                            });
                        }
                        _ if self.common_tag(tag, at, a, &mut c, "m")? => {}
                        _ => return Err(SyntaxError::new(at, format!("body: unknown tag :{tag}"))),
                    }
                }
                let (k, kat) = a.strings()?;
                Test::Body {
                    transform: transform.unwrap_or(BodyTransform::Text),
                    types,
                    matcher: c.matcher(),
                    keys: self.strs(&k, kat)?,
                }
            }
            "string" => {
                self.need("variables", t.at)?;
                let c = self.take_common(a, "m")?;
                let (s, sat) = a.strings()?;
                let (k, kat) = a.strings()?;
                Test::String {
                    matcher: c.matcher(),
                    sources: self.strs(&s, sat)?,
                    keys: self.strs(&k, kat)?,
                }
            }
            "hasflag" => {
                self.need("imap4flags", t.at)?;
                let c = self.take_common(a, "m")?;
                let (first, fat) = a.strings()?;
                let (variables, keys) = match a.list.get(a.i) {
                    Some((Argument::Strings(_), _)) => {
                        self.need("variables", fat)?;
                        let (k, kat) = a.strings()?;
                        (Some(self.strs(&first, fat)?), self.strs(&k, kat)?)
                    }
                    _ => (None, self.strs(&first, fat)?),
                };
                Test::HasFlag {
                    matcher: c.matcher(),
                    variables,
                    keys,
                }
            }
            "date" | "currentdate" => self.date(t, a)?,
            "duplicate" => {
                self.need("duplicate", t.at)?;
                let (mut handle, mut header, mut uniqueid, mut seconds, mut last) =
                    (None, None, None, None, false);
                while let Some((tag, tat)) = a.next_tag() {
                    match tag {
                        "handle" => handle = Some(self.str(&a.string()?.0, tat)?),
                        "header" if uniqueid.is_none() => {
                            header = Some(self.str(&a.string()?.0, tat)?)
                        }
                        "uniqueid" if header.is_none() => {
                            uniqueid = Some(self.str(&a.string()?.0, tat)?)
                        }
                        "seconds" => seconds = Some(a.number()?),
                        "last" => last = true,
                        _ => {
                            return Err(SyntaxError::new(
                                tat,
                                format!("duplicate: bad tag :{tag}"),
                            ));
                        }
                    }
                }
                Test::Duplicate {
                    handle,
                    header,
                    uniqueid,
                    seconds,
                    last,
                }
            }
            "spamtest" => {
                self.need("spamtest", t.at)?;
                let mut c = Common::default();
                let mut percent = false;
                while let Some(tag) = a.peek_tag() {
                    let at = a.here();
                    a.i += 1;
                    if tag == "percent" {
                        self.need("spamtestplus", at)?;
                        percent = true;
                    } else if !self.common_tag(tag, at, a, &mut c, "m")? {
                        return Err(SyntaxError::new(
                            at,
                            format!("spamtest: unknown tag :{tag}"),
                        ));
                    }
                }
                let (v, vat) = a.string()?;
                Test::SpamTest {
                    matcher: c.matcher(),
                    percent,
                    value: self.str(&v, vat)?,
                }
            }
            "environment" => {
                self.need("environment", t.at)?;
                let c = self.take_common(a, "m")?;
                let (n, nat) = a.string()?;
                let (k, kat) = a.strings()?;
                Test::Environment {
                    matcher: c.matcher(),
                    name: self.str(&n, nat)?,
                    keys: self.strs(&k, kat)?,
                }
            }
            "mailboxexists" => {
                self.need("mailbox", t.at)?;
                let (l, lat) = a.strings()?;
                Test::MailboxExists(self.strs(&l, lat)?)
            }
            "valid_notify_method" => {
                self.need("enotify", t.at)?;
                let (l, lat) = a.strings()?;
                Test::ValidNotifyMethod(self.strs(&l, lat)?)
            }
            "notify_method_capability" => {
                self.need("enotify", t.at)?;
                let c = self.take_common(a, "m")?;
                let (u, uat) = a.string()?;
                let (cap, cat) = a.string()?;
                let (k, kat) = a.strings()?;
                Test::NotifyMethodCapability {
                    matcher: c.matcher(),
                    uri: self.str(&u, uat)?,
                    capability: self.str(&cap, cat)?,
                    keys: self.strs(&k, kat)?,
                }
            }
            other => return Err(SyntaxError::new(t.at, format!("unknown test {other:?}"))),
        })
    }

    /// RFC 5260 §4, §5.
    fn date(&self, t: &RawTest, a: &mut Args<'_>) -> Result<Test, SyntaxError> {
        self.need("date", t.at)?;
        let current = t.name == "currentdate";
        let mut c = Common::default();
        let mut zone = Zone::Local;
        while let Some(tag) = a.peek_tag() {
            let at = a.here();
            a.i += 1;
            match tag {
                "zone" => {
                    let (z, zat) = a.string()?;
                    if !z.contains('$') && message::date::parse_zone(&z).is_none() {
                        return Err(SyntaxError::new(zat, format!("date: bad zone {z:?}")));
                    }
                    zone = Zone::Fixed(self.str(&z, zat)?);
                }
                "originalzone" if !current => zone = Zone::Original,
                _ if self.common_tag(tag, at, a, &mut c, if current { "m" } else { "mi" })? => {}
                _ => {
                    return Err(SyntaxError::new(
                        at,
                        format!("{}: unknown tag :{tag}", t.name),
                    ));
                }
            }
        }
        let header = if current {
            None
        } else {
            let (h, hat) = a.string()?;
            Some(self.str(&h, hat)?)
        };
        let (part, pat) = a.string()?;
        let part = date_part(&part)
            .ok_or_else(|| SyntaxError::new(pat, format!("unknown date part {part:?}")))?;
        let (k, kat) = a.strings()?;
        Ok(Test::Date {
            matcher: c.matcher(),
            zone,
            header,
            part,
            keys: self.strs(&k, kat)?,
            index: c.index(),
        })
    }
}

/// A `:regex` key written as a literal must compile (a variable's value
/// is checked when the script runs).
fn check_regex_keys(t: &Test, at: Position) -> Result<(), SyntaxError> {
    let (matcher, keys) = match t {
        Test::Address { matcher, keys, .. }
        | Test::Envelope { matcher, keys, .. }
        | Test::Header { matcher, keys, .. }
        | Test::Body { matcher, keys, .. }
        | Test::String { matcher, keys, .. }
        | Test::HasFlag { matcher, keys, .. }
        | Test::Date { matcher, keys, .. }
        | Test::Environment { matcher, keys, .. } => (matcher, keys),
        _ => return Ok(()),
    };
    if matcher.kind != MatchType::Regex {
        return Ok(());
    }
    for k in keys.iter().filter_map(Str::as_literal) {
        crate::compare::check_regex(&k).map_err(|e| SyntaxError::new(at, e))?;
    }
    Ok(())
}

/// An address as `redirect` takes it: trimmed, `<...>` allowed.
pub fn unbracket(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(t)
}

fn no_arguments(c: &RawCommand) -> Result<(), SyntaxError> {
    if c.arguments.is_empty() && c.tests.is_empty() {
        Ok(())
    } else {
        Err(SyntaxError::new(
            c.at,
            format!("{} takes no arguments", c.name),
        ))
    }
}

fn relation(op: &str) -> Option<Relation> {
    Some(match op.to_ascii_lowercase().as_str() {
        "gt" => Relation::Gt,
        "ge" => Relation::Ge,
        "lt" => Relation::Lt,
        "le" => Relation::Le,
        "eq" => Relation::Eq,
        "ne" => Relation::Ne,
        _ => return None,
    })
}

pub fn date_part(s: &str) -> Option<DatePart> {
    Some(match s.to_ascii_lowercase().as_str() {
        "year" => DatePart::Year,
        "month" => DatePart::Month,
        "day" => DatePart::Day,
        "date" => DatePart::Date,
        "julian" => DatePart::Julian,
        "hour" => DatePart::Hour,
        "minute" => DatePart::Minute,
        "second" => DatePart::Second,
        "time" => DatePart::Time,
        "iso8601" => DatePart::Iso8601,
        "std11" => DatePart::Std11,
        "zone" => DatePart::Zone,
        "weekday" => DatePart::Weekday,
        _ => return None,
    })
}

/// RFC 5293 §7 / RFC 5322 §3.6.8: a field name is printable ASCII but colon.
fn check_header_name(name: &str, at: Position) -> Result<(), SyntaxError> {
    if name.contains('$') {
        return Ok(());
    }
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(SyntaxError::new(
            at,
            format!("{name:?} is not a header field name"),
        ));
    }
    Ok(())
}

/// RFC 5229 §3: `identifier` or namespaced `a.b`.
fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|p| {
            let mut c = p.chars();
            c.next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        })
}

/// RFC 5229 §3: `${name}` and `${N}` in a string; anything else stays text.
pub fn parse_variables(s: &str) -> Str {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        let name = &after[..end];
        let part = if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            name.parse::<usize>().ok().map(Part::Match)
        } else if valid_variable_name(name) {
            Some(Part::Var(name.to_ascii_lowercase()))
        } else {
            None
        };
        match part {
            Some(p) => {
                text.push_str(&rest[..i]);
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(p);
                rest = &after[end + 1..];
            }
            None => {
                text.push_str(&rest[..i + 2]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() || parts.is_empty() {
        parts.push(Part::Text(text));
    }
    Str(parts)
}

/// RFC 5228 §2.4.2.4: `${hex: 41 42}` and `${unicode: 263a}`.
fn decode_encoded_characters(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let lower = after.to_ascii_lowercase();
        let (kind, body_start) = if lower.starts_with("hex:") {
            ("hex", 4)
        } else if lower.starts_with("unicode:") {
            ("unicode", 8)
        } else {
            out.push_str("${");
            rest = after;
            continue;
        };
        let Some(end) = after.find('}') else {
            out.push_str("${");
            rest = after;
            continue;
        };
        let body = &after[body_start..end];
        let items: Vec<&str> = body.split_whitespace().collect();
        let decoded = if kind == "hex" {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.len() <= 2))
                .collect();
            bytes.and_then(|b| String::from_utf8(b).ok())
        } else {
            let chars: Option<String> = items
                .iter()
                .map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32))
                .collect();
            match chars {
                Some(c) => Some(c),
                // §2.4.2.4: an invalid Unicode code point is an error.
                None => return Err(format!("bad ${{unicode:{body}}}")),
            }
        };
        match decoded {
            Some(d) if !items.is_empty() => {
                out.push_str(&d);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        compile(s).unwrap_err().to_string()
    }

    #[test]
    fn checks() {
        assert!(compile("keep;").is_ok());
        assert_eq!(
            err("fileinto \"A\";"),
            "line 1, column 1: \"fileinto\" is used without require \"fileinto\""
        );
        assert_eq!(
            err("require \"nope\";"),
            "line 1, column 9: unsupported extension \"nope\""
        );
        assert!(
            err("keep;\nrequire \"fileinto\";")
                .contains("line 2, column 1: require must come before")
        );
        assert!(err("else { keep; }").contains("without a preceding if"));
        assert_eq!(
            err("if true keep;"),
            "line 1, column 4: true takes no test list"
        );
        assert!(err("if true { keep }").contains("expected ';' or a block"));
        assert!(err("redirect \"not an address\";").contains("is not an address"));
        assert!(err("if header :bogus \"a\" \"b\" { keep; }").contains("unknown tag :bogus"));
        assert!(err("if header :is :contains \"a\" \"b\" { keep; }").contains("given twice"));
        assert!(err("if size 10 { keep; }").contains("expected :over or :under"));
        assert!(err("keep \"x\";").contains("too many arguments"));
        assert!(err("require \"foreverypart\"; break;").contains("break outside"));
        assert!(err("require \"variables\"; set \"a b\" \"x\";").contains("not a variable name"));
        assert!(
            err("require \"date\"; if date :zone \"+25\" \"date\" \"year\" \"2024\" {}")
                .contains("bad zone")
        );
    }

    #[test]
    fn strings() {
        assert_eq!(
            parse_variables("a ${x} ${1} ${bad name} ${"),
            Str(vec![
                Part::Text("a ".into()),
                Part::Var("x".into()),
                Part::Text(" ".into()),
                Part::Match(1),
                Part::Text(" ${bad name} ${".into()),
            ])
        );
        assert_eq!(
            decode_encoded_characters("${hex:24 24}${unicode:263a}").unwrap(),
            "$$\u{263a}"
        );
        assert_eq!(decode_encoded_characters("${hex:zz}").unwrap(), "${hex:zz}");
        assert!(decode_encoded_characters("${unicode:D800}").is_err());
        assert_eq!(message::date::parse_zone("-0130"), Some(-5400));
    }
}
