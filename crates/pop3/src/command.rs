//! POP3 commands (RFC 1939 §3-§7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).

/// RFC 2449 §4: a command line is at most 255 octets with its CRLF.
pub const MAX_LINE: usize = 255;
/// RFC 2449 §4: an argument is at most 40 characters.
pub const MAX_ARG: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    Stls,
    User(String),
    Pass(String),
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    Dele(u32),
    Top(u32, u32),
    Noop,
    Rset,
    Quit,
}

/// Parse one command line (without CRLF); Err is the text for `-ERR`.
pub fn parse(line: &[u8]) -> Result<Command, &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "invalid UTF-8")?;
    if line.chars().any(char::is_control) {
        return Err("control character in command");
    }
    let mut parts = line.splitn(2, ' ');
    let keyword = parts.next().unwrap_or_default().to_ascii_uppercase();
    let rest = parts.next();
    // PASS may hold spaces (RFC 1939 §7 allows it); everything else is split.
    if keyword == "PASS" {
        return rest
            .map(|p| Command::Pass(p.to_string()))
            .ok_or("PASS needs a password");
    }
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    if args.iter().any(|a| a.is_empty() || a.len() > MAX_ARG) {
        return Err("bad argument");
    }
    let none = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err("no arguments allowed")
        }
    };
    let number = |i: usize| -> Result<u32, &'static str> {
        args.get(i)
            .and_then(|a| a.parse::<u32>().ok())
            .ok_or("expected a message number")
    };
    let optional = || -> Result<Option<u32>, &'static str> {
        match args.len() {
            0 => Ok(None),
            1 => number(0).map(Some),
            _ => Err("too many arguments"),
        }
    };
    let one = || -> Result<u32, &'static str> {
        if args.len() == 1 {
            number(0)
        } else {
            Err("expected one message number")
        }
    };
    match keyword.as_str() {
        "CAPA" => none(Command::Capa),
        "STLS" => none(Command::Stls),
        "USER" if args.len() == 1 => Ok(Command::User(args[0].to_string())),
        "USER" => Err("USER needs a name"),
        "AUTH" => match args.as_slice() {
            [m] => Ok(Command::Auth {
                mechanism: m.to_string(),
                initial: None,
            }),
            [m, i] => Ok(Command::Auth {
                mechanism: m.to_string(),
                initial: Some(i.to_string()),
            }),
            _ => Err("AUTH needs a mechanism"),
        },
        "STAT" => none(Command::Stat),
        "LIST" => optional().map(Command::List),
        "UIDL" => optional().map(Command::Uidl),
        "RETR" => one().map(Command::Retr),
        "DELE" => one().map(Command::Dele),
        // RFC 1939 §7: TOP msg n, n non-negative.
        "TOP" if args.len() == 2 => Ok(Command::Top(
            number(0)?,
            args[1]
                .parse()
                .map_err(|_| "expected a non-negative line count")?,
        )),
        "TOP" => Err("TOP needs a message number and a line count"),
        "NOOP" => none(Command::Noop),
        "RSET" => none(Command::Rset),
        "QUIT" => none(Command::Quit),
        _ => Err("unknown command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse(b"user alice@a.test"),
            Ok(Command::User("alice@a.test".into()))
        );
        assert_eq!(
            parse(b"PASS two words"),
            Ok(Command::Pass("two words".into()))
        );
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"TOP 1 10"), Ok(Command::Top(1, 10)));
        // hardening.md C-IM10.
        assert!(parse(b"TOP 1 -1").is_err());
        assert!(parse(b"RETR 4294967296").is_err());
        assert_eq!(parse(b"RETR 4294967295"), Ok(Command::Retr(u32::MAX)));
        assert!(parse(b"STAT x").is_err());
        assert!(parse(b"FROB").is_err());
        assert!(parse(&[b'U', b'S', b'E', b'R', b' ', 0]).is_err());
        assert!(parse(format!("USER {}", "a".repeat(41)).as_bytes()).is_err());
    }
}
