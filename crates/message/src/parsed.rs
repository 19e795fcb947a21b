//! mail-parser's reading of a whole message, for the spam filter and the
//! search index, which want its text parts decoded to UTF-8.
//!
//! Each message/rfc822 part becomes a message nested in the one around it,
//! as deep as the sender nests them, and Rust drops nested values by
//! recursion: a message of 40,000 nested message/rfc822 parts (1.3 MB)
//! overflowed a task's stack when its reading was dropped, and a stack
//! overflow aborts the whole server (hardening.md C-FZ17). Its parsing is
//! a loop; [`Parsed`] takes the nested messages out level by level when
//! it is dropped, so that each drops with nothing nested in it.

use mail_parser::{Message, MessageParser, PartType};

/// A whole message as mail-parser reads it (None when it reads nothing).
pub struct Parsed<'x> {
    message: Option<Message<'x>>,
}

/// Read a whole message.
pub fn parse(raw: &[u8]) -> Parsed<'_> {
    Parsed {
        message: MessageParser::default().parse(raw),
    }
}

impl<'x> Parsed<'x> {
    pub fn message(&self) -> Option<&Message<'x>> {
        self.message.as_ref()
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let mut levels: Vec<Message<'_>> = self.message.take().into_iter().collect();
        while let Some(mut level) = levels.pop() {
            for part in level.parts.iter_mut() {
                if let PartType::Message(inner) =
                    std::mem::replace(&mut part.body, PartType::Binary(Default::default()))
                {
                    levels.push(inner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C-FZ17: read and dropped within a task's stack (tokio's default:
    /// 2 MiB), where the plain reading of it overflows.
    #[test]
    fn a_message_nested_forty_thousand_deep_fits_a_task_stack() {
        let mut raw = "Content-Type: message/rfc822\r\n\r\n".repeat(40_000);
        raw.push_str("Subject: the bottom\r\n\r\nbody\r\n");
        let parts = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(raw.as_bytes()).message().map(|m| m.parts.len()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(parts, Some(1));
    }
}
