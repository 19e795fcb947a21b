//! A checked script: every command and test known, every argument typed,
//! every extension it uses required. What the interpreter runs.

/// A string as written: text, and with "variables" the `${name}` (or
/// `${1}`) references it holds (RFC 5229 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Var(String),
    /// A match variable `${N}`.
    Match(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Str(pub Vec<Part>);

impl Str {
    pub fn literal(s: &str) -> Str {
        Str(vec![Part::Text(s.to_string())])
    }

    /// The text, when no variable is involved.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                _ => return None,
            }
        }
        Some(out)
    }
}

pub type StrList = Vec<Str>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// `i;octet`
    Octet,
    /// `i;ascii-casemap`, the default (RFC 5228 §2.7.3).
    AsciiCasemap,
    /// `i;ascii-numeric` (RFC 4790 §9.1; RFC 5231).
    AsciiNumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchType {
    Is,
    Contains,
    Matches,
    /// draft-ietf-sieve-regex: POSIX-style extended expressions.
    Regex,
    /// RFC 5231.
    Value(Relation),
    Count(Relation),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub comparator: Comparator,
    pub kind: MatchType,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher {
            comparator: Comparator::AsciiCasemap,
            kind: MatchType::Is,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressPart {
    #[default]
    All,
    LocalPart,
    Domain,
    /// RFC 5233.
    User,
    Detail,
}

/// RFC 5260 §6: which occurrence of a header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub n: usize,
    pub last: bool,
}

/// RFC 5703 §4: which MIME parts a test looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MimeOpts {
    /// `:mime`: headers of the current part (inside foreverypart) or of
    /// the top entity, with structured values split out.
    pub mime: bool,
    /// `:anychild`: every part below the current one.
    pub anychild: bool,
    /// `:type` `:subtype` `:contenttype` `:param [names]`: compare a piece of
    /// a Content-Type-like field instead of the whole value.
    pub piece: Option<MimePiece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MimePiece {
    Type,
    Subtype,
    ContentType,
    Param(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyTransform {
    Raw,
    /// Parts of these types (the list is in `Test::Body::types`).
    Content,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatePart {
    Year,
    Month,
    Day,
    Date,
    Julian,
    Hour,
    Minute,
    Second,
    Time,
    Iso8601,
    Std11,
    Zone,
    Weekday,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// The zone of the date as written (`:originalzone`).
    Original,
    /// `:zone "+0100"`.
    Fixed(Str),
    /// Neither: the server's (UTC for Tern).
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Address {
        part: AddressPart,
        matcher: Matcher,
        headers: StrList,
        keys: StrList,
        index: Option<Index>,
        mime: MimeOpts,
    },
    Envelope {
        part: AddressPart,
        matcher: Matcher,
        fields: StrList,
        keys: StrList,
    },
    Header {
        matcher: Matcher,
        headers: StrList,
        keys: StrList,
        index: Option<Index>,
        mime: MimeOpts,
    },
    Exists {
        headers: StrList,
        mime: MimeOpts,
    },
    Size {
        over: bool,
        limit: u64,
    },
    Body {
        transform: BodyTransform,
        types: StrList,
        matcher: Matcher,
        keys: StrList,
    },
    /// RFC 5229 §5.
    String {
        matcher: Matcher,
        sources: StrList,
        keys: StrList,
    },
    /// RFC 5232 §4.
    HasFlag {
        matcher: Matcher,
        variables: Option<StrList>,
        keys: StrList,
    },
    /// RFC 5260 §4 (`header` None: `currentdate`).
    Date {
        matcher: Matcher,
        zone: Zone,
        header: Option<Str>,
        part: DatePart,
        keys: StrList,
        index: Option<Index>,
    },
    /// RFC 7352.
    Duplicate {
        handle: Option<Str>,
        header: Option<Str>,
        uniqueid: Option<Str>,
        seconds: Option<u64>,
        last: bool,
    },
    /// RFC 5235 (`percent`: spamtestplus).
    SpamTest {
        matcher: Matcher,
        percent: bool,
        value: Str,
    },
    /// RFC 5183.
    Environment {
        matcher: Matcher,
        name: Str,
        keys: StrList,
    },
    /// RFC 5490 §3.
    MailboxExists(StrList),
    /// RFC 5435 §5.
    ValidNotifyMethod(StrList),
    NotifyMethodCapability {
        matcher: Matcher,
        uri: Str,
        capability: Str,
        keys: StrList,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacation {
    pub seconds: u64,
    pub subject: Option<Str>,
    pub from: Option<Str>,
    pub addresses: StrList,
    pub mime: bool,
    pub handle: Option<Str>,
    pub reason: Str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Set,
    Add,
    Remove,
}

/// RFC 5229 §4.1 modifiers of `set`, applied highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    Length,
    QuoteWildcard,
    UpperFirst,
    LowerFirst,
    Upper,
    Lower,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    If {
        branches: Vec<(Test, Vec<Command>)>,
        otherwise: Option<Vec<Command>>,
    },
    Stop,
    Keep {
        flags: Option<StrList>,
    },
    Discard,
    Redirect {
        address: Str,
        copy: bool,
    },
    FileInto {
        mailbox: Str,
        copy: bool,
        flags: Option<StrList>,
        create: bool,
    },
    Reject {
        reason: Str,
        extended: bool,
    },
    Vacation(Box<Vacation>),
    Flags {
        op: FlagOp,
        variable: Option<Str>,
        flags: StrList,
    },
    Set {
        name: String,
        value: Str,
        modifiers: Vec<Modifier>,
    },
    AddHeader {
        last: bool,
        name: Str,
        value: Str,
    },
    DeleteHeader {
        index: Option<Index>,
        matcher: Matcher,
        name: Str,
        patterns: Option<StrList>,
    },
    Notify {
        method: Str,
        from: Option<Str>,
        importance: Option<Str>,
        options: StrList,
        message: Option<Str>,
    },
    Include {
        global: bool,
        once: bool,
        optional: bool,
        name: Str,
    },
    Return,
    Global(Vec<String>),
    ForEveryPart {
        name: Option<String>,
        body: Vec<Command>,
    },
    Break {
        name: Option<String>,
    },
}

/// A checked script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub requires: Vec<String>,
    pub commands: Vec<Command>,
}

impl Script {
    /// Whether running it may forward the message: a `redirect`, or an
    /// `include` (what it brings in is known only when it runs).
    pub fn may_redirect(&self) -> bool {
        fn any(list: &[Command]) -> bool {
            list.iter().any(|c| match c {
                Command::Redirect { .. } | Command::Include { .. } => true,
                Command::If {
                    branches,
                    otherwise,
                } => branches.iter().any(|(_, b)| any(b)) || otherwise.as_deref().is_some_and(any),
                Command::ForEveryPart { body, .. } => any(body),
                _ => false,
            })
        }
        any(&self.commands)
    }
}
