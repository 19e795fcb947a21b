//! The body properties of a large message without holding it (hardening.md
//! C-FT9): its outline (`message::outline`, one pass over the stored
//! message), then, when sizes or text values are asked for, one more pass
//! that feeds each leaf's content to its decoder a piece at a time,
//! counting the decoded octets and keeping the text of the parts whose
//! values are asked for (no more than `maxBodyValueBytes` needs).

use std::collections::HashMap;
use std::ops::Range;

use message::mime::{Decoder, Entity, Source};
use message::outline::Outline;
use store::{MailboxId, Store};

use super::body::Parts;

/// A large message's structure and what the pass over its leaves measured.
pub struct StreamedBody {
    pub outline: Outline,
    sizes: HashMap<(usize, usize), usize>,
    texts: HashMap<(usize, usize), (String, bool)>,
}

impl Source for StreamedBody {
    fn head(&self, e: &Entity) -> &[u8] {
        self.outline.head(e)
    }

    fn lines(&self, e: &Entity) -> usize {
        self.outline.lines(e)
    }
}

impl Parts for StreamedBody {
    fn decoded_size(&self, e: &Entity) -> usize {
        self.sizes.get(&key(&e.body)).copied().unwrap_or(0)
    }

    fn text(&self, e: &Entity) -> (String, bool) {
        self.texts.get(&key(&e.body)).cloned().unwrap_or_default()
    }
}

fn key(range: &Range<usize>) -> (usize, usize) {
    (range.start, range.end)
}

/// What to measure: every leaf's decoded size or none, and the text of
/// the leaves with these body ranges, each cut after `text_cap` decoded
/// octets (0: whole).
pub struct Wanted {
    pub sizes: bool,
    pub texts: Vec<Range<usize>>,
    pub text_cap: usize,
}

/// One leaf being read: its range, its decoder, what it measured.
struct Leaf {
    body: Range<usize>,
    decoder: Decoder,
    problem: bool,
    /// Whether its size is asked for (else reading stops once the text
    /// is long enough).
    sized: bool,
    size: usize,
    /// The decoded octets kept, for a text value.
    text: Option<Vec<u8>>,
    charset: String,
}

/// Read the outline of the message at (`mailbox`, `uid`), of `size`
/// octets, then what `wanted` asks of its leaves. None if it is gone.
pub async fn read(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    size: u64,
    wanted: impl FnOnce(&Outline) -> Wanted,
) -> store::Result<Option<StreamedBody>> {
    let Some(outline) = store::stream::outline(store, mailbox, uid, size).await? else {
        return Ok(None);
    };
    let (mut leaves, cap) = {
        let w = wanted(&outline);
        let mut leaves: Vec<Leaf> = Vec::new();
        for e in super::body::leaves(&outline.root)
            .into_iter()
            .map(|l| l.entity)
        {
            let text = w.texts.contains(&e.body);
            if w.sizes || text {
                leaves.push(leaf(&outline, e, w.sizes, text));
            }
        }
        (leaves, w.text_cap)
    };
    if !measure(store, mailbox, uid, &mut leaves, cap).await? {
        return Ok(None);
    }
    let mut body = StreamedBody {
        outline,
        sizes: HashMap::new(),
        texts: HashMap::new(),
    };
    for l in leaves {
        body.sizes.insert(key(&l.body), l.size);
        if let Some(bytes) = l.text {
            let text = message::mime::decode_charset(&l.charset, &bytes);
            body.texts.insert(key(&l.body), (text, l.problem));
        }
    }
    Ok(Some(body))
}

fn leaf(outline: &Outline, e: &Entity, sized: bool, text: bool) -> Leaf {
    let encoding = outline.field(e, "Content-Transfer-Encoding");
    // An unknown encoding: the octets as they are, and a problem (§4.1.4
    // isEncodingProblem), as for a message held whole.
    let (decoder, problem) = match Decoder::new(encoding.as_deref()) {
        Some(d) => (d, false),
        None => (Decoder::Identity, true),
    };
    Leaf {
        body: e.body.clone(),
        decoder,
        problem,
        sized,
        size: 0,
        text: text.then(Vec::new),
        charset: e
            .content_type
            .param("charset")
            .unwrap_or("us-ascii")
            .to_ascii_lowercase(),
    }
}

/// The pass over the leaves: each piece of the message that holds leaf
/// content goes through that leaf's decoder. False if the message is gone.
async fn measure(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    leaves: &mut [Leaf],
    cap: usize,
) -> store::Result<bool> {
    // A text value is cut at `cap` octets of UTF-8 after charset decoding:
    // four decoded octets per character at most is always enough.
    let keep = if cap == 0 {
        usize::MAX
    } else {
        cap.saturating_mul(4).saturating_add(4)
    };
    let mut decoded = Vec::new();
    for l in leaves.iter_mut() {
        let mut next = l.body.start as u64;
        let end = l.body.end as u64;
        while next < end {
            let Some(got) = store::stream::scan_piece(store, mailbox, uid, next, end).await? else {
                return Ok(false);
            };
            next += got.len() as u64;
            decoded.clear();
            l.decoder.feed(&got, &mut decoded);
            if next == end {
                l.decoder.finish(&mut decoded);
            }
            l.size += decoded.len();
            if let Some(text) = l.text.as_mut() {
                let room = keep.saturating_sub(text.len());
                text.extend_from_slice(&decoded[..decoded.len().min(room)]);
                if !l.sized && text.len() >= keep {
                    break;
                }
            }
        }
    }
    Ok(true)
}
