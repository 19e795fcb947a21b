//! The THREAD algorithms of RFC 5256 §2.2 (ORDEREDSUBJECT, REFERENCES) and
//! the thread list they answer with (§4). Pure: the session hands in the
//! messages' indexed fields.

use std::collections::HashMap;

/// One message to thread.
#[derive(Debug, Clone)]
pub struct Item {
    /// What the answer shows: the sequence number or the UID.
    pub number: u32,
    pub message_id: Option<String>,
    /// References, or In-Reply-To when there are none (RFC 5256 §2.2 (1)).
    pub references: Vec<String>,
    /// The sent date (RFC 5256 §2.2: the Date: field, else the internal date).
    pub date: i64,
    /// RFC 5256 §2.1.
    pub base_subject: String,
    /// The subject marks a reply or forward.
    pub reply: bool,
}

/// Threads as a forest kept in one arena: each node a message (`item`)
/// or a dummy (None), with its children in order; `roots` the threads in
/// order. Every walk over it is a loop with its own stack, never a
/// recursion: a conversation can be as deep as the mailbox is long, and
/// anyone can send one (hardening.md C-FZ16).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forest {
    item: Vec<Option<usize>>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

impl Forest {
    fn add(&mut self, item: Option<usize>) -> usize {
        self.item.push(item);
        self.parent.push(None);
        self.children.push(Vec::new());
        self.item.len() - 1
    }

    /// Whether `a` is `b` or below it.
    fn is_under(&self, mut a: usize, b: usize) -> bool {
        loop {
            if a == b {
                return true;
            }
            match self.parent[a] {
                Some(p) => a = p,
                None => return false,
            }
        }
    }

    fn unlink(&mut self, c: usize) {
        if let Some(p) = self.parent[c].take() {
            self.children[p].retain(|&x| x != c);
        }
    }

    /// Make `p` the parent of `c`, unless that makes a loop.
    fn link(&mut self, p: usize, c: usize) -> bool {
        // A container without children is below nothing but itself.
        if p == c || (!self.children[c].is_empty() && self.is_under(p, c)) {
            return false;
        }
        self.unlink(c);
        self.parent[c] = Some(p);
        self.children[p].push(c);
        true
    }

    /// The nodes below `roots` (them included), each before its children.
    fn preorder(&self, roots: &[usize]) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.item.len());
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        while let Some(c) = stack.pop() {
            order.push(c);
            stack.extend(self.children[c].iter().rev());
        }
        order
    }

    /// The message a node stands for: its own, or a dummy's first child's.
    fn first_message(&self, mut c: usize) -> Option<usize> {
        loop {
            match (self.item[c], self.children[c].first()) {
                (Some(i), _) => return Some(i),
                (None, Some(&first)) => c = first,
                (None, None) => return None,
            }
        }
    }
}

/// RFC 5256 §2.2 ORDEREDSUBJECT: by base subject, then date; the first
/// message of a subject starts the thread, the others are its children.
pub fn ordered_subject(items: &[Item]) -> Forest {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        (&items[a].base_subject, items[a].date, a).cmp(&(&items[b].base_subject, items[b].date, b))
    });
    let mut f = Forest::default();
    let mut current: Option<(&str, usize)> = None;
    for i in order {
        let subject = items[i].base_subject.as_str();
        let c = f.add(Some(i));
        match current {
            Some((s, top)) if s == subject => f.children[top].push(c),
            _ => {
                f.roots.push(c);
                current = Some((subject, c));
            }
        }
    }
    f.roots
        .sort_by_key(|&t| f.item[t].map(|i| (items[i].date, i)));
    f
}

/// RFC 5256 §2.2 REFERENCES (after Jamie Zawinski's algorithm).
pub fn references(items: &[Item]) -> Forest {
    let mut f = Forest::default();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, m) in items.iter().enumerate() {
        // (1) The message's own container: its Message-ID's, filling a
        // dummy made by an earlier reference; without an id, or with one a
        // message already has, a container of its own.
        let own = match m.message_id.as_deref().map(|id| (id, by_id.get(id))) {
            Some((_, Some(&c))) if f.item[c].is_none() => {
                f.item[c] = Some(i);
                c
            }
            Some((_, Some(_))) => f.add(Some(i)),
            Some((id, None)) => {
                let c = f.add(Some(i));
                by_id.insert(id, c);
                c
            }
            None => f.add(Some(i)),
        };
        // (1A) Link the references in order, keeping existing parents.
        let mut previous: Option<usize> = None;
        for r in &m.references {
            let c = match by_id.get(r.as_str()) {
                Some(&c) => c,
                None => {
                    let c = f.add(None);
                    by_id.insert(r, c);
                    c
                }
            };
            if let Some(p) = previous
                && f.parent[c].is_none()
            {
                f.link(p, c);
            }
            previous = Some(c);
        }
        // (1B) The last reference is the parent of the message.
        match previous {
            Some(p) if p != own => {
                f.link(p, own);
            }
            _ => f.unlink(own),
        }
    }
    // (2) The root set; (3) dummies pruned.
    f.roots = (0..f.item.len())
        .filter(|&c| f.parent[c].is_none())
        .collect();
    prune(&mut f);
    // (4) The root set by date.
    sort_by_date(&mut f, items);
    // (5) Threads with the same base subject together.
    group_by_subject(&mut f, items);
    // (6) Every set of siblings by date.
    sort_by_date(&mut f, items);
    f
}

/// (3) A dummy without children goes; one with children gives them to its
/// level, except at the top where it stays when it has more than one.
/// Children first, so a dummy sees its children already pruned.
fn prune(f: &mut Forest) {
    let order = f.preorder(&f.roots);
    // What each node leaves in its parent's list.
    let mut left: Vec<Vec<usize>> = vec![Vec::new(); f.item.len()];
    for &c in order.iter().rev() {
        let below: Vec<usize> = std::mem::take(&mut f.children[c])
            .into_iter()
            .flat_map(|x| std::mem::take(&mut left[x]))
            .collect();
        let top = f.parent[c].is_none();
        left[c] = if f.item[c].is_some() || (top && below.len() > 1) {
            f.children[c] = below;
            vec![c]
        } else {
            below
        };
    }
    f.roots = std::mem::take(&mut f.roots)
        .into_iter()
        .flat_map(|r| std::mem::take(&mut left[r]))
        .collect();
}

/// The date a node sorts by: its message's, or a dummy's first child's
/// (RFC 5256 §2.2 (4)); then every list of siblings and the roots by it.
fn sort_by_date(f: &mut Forest, items: &[Item]) {
    let order = f.preorder(&f.roots);
    let mut date = vec![(i64::MAX, usize::MAX); f.item.len()];
    for &c in order.iter().rev() {
        let mut children = std::mem::take(&mut f.children[c]);
        children.sort_by_key(|&x| date[x]);
        date[c] = match f.item[c] {
            Some(i) => (items[i].date, i),
            None => children
                .first()
                .map_or((i64::MAX, usize::MAX), |&x| date[x]),
        };
        f.children[c] = children;
    }
    f.roots.sort_by_key(|&r| date[r]);
}

fn subject_of<'a>(f: &Forest, c: usize, items: &'a [Item]) -> &'a str {
    f.first_message(c)
        .map_or("", |i| items[i].base_subject.as_str())
}

fn is_reply(f: &Forest, c: usize, items: &[Item]) -> bool {
    f.item[c].is_some_and(|i| items[i].reply)
}

/// (5) Gather the top-level threads that share a base subject.
fn group_by_subject(f: &mut Forest, items: &[Item]) {
    // (5B) One entry per subject: a dummy wins over a message, an original
    // over a reply.
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (k, &n) in f.roots.iter().enumerate() {
        let s = subject_of(f, n, items);
        if s.is_empty() {
            continue;
        }
        match table.get(s).copied() {
            None => {
                table.insert(s, k);
            }
            Some(old) => {
                let o = f.roots[old];
                // The table's is a message; the new one a dummy, or an
                // original where the table has a reply.
                let better =
                    f.item[n].is_none() || (is_reply(f, o, items) && !is_reply(f, n, items));
                if f.item[o].is_some() && better {
                    table.insert(s, k);
                }
            }
        }
    }
    // (5C) Merge each other thread into the table's.
    let mut slots: Vec<Option<usize>> = f.roots.iter().copied().map(Some).collect();
    for k in 0..slots.len() {
        let Some(current) = slots[k] else { continue };
        let s = subject_of(f, current, items);
        if s.is_empty() {
            continue;
        }
        let Some(&t) = table.get(s) else { continue };
        if t == k {
            continue;
        }
        let Some(kept) = slots[t] else { continue };
        slots[k] = None;
        let merged = match (f.item[kept].is_none(), f.item[current].is_none()) {
            (true, true) => {
                let moved = std::mem::take(&mut f.children[current]);
                f.children[kept].extend(moved);
                kept
            }
            (true, false) => {
                f.children[kept].push(current);
                kept
            }
            (false, _) if is_reply(f, current, items) && !is_reply(f, kept, items) => {
                f.children[kept].push(current);
                kept
            }
            _ => {
                let dummy = f.add(None);
                f.children[dummy] = vec![kept, current];
                dummy
            }
        };
        slots[t] = Some(merged);
    }
    f.roots = slots.into_iter().flatten().collect();
}

/// RFC 5256 §4: `(1 2 3)(4 (5)(6))((7)(8))`: a message with one child is
/// followed by it; several children each in parentheses.
pub fn render(f: &Forest, items: &[Item]) -> String {
    enum Step {
        Node(usize),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack: Vec<Step> = Vec::new();
    let nested = |children: &[usize], stack: &mut Vec<Step>| {
        for &c in children.iter().rev() {
            stack.extend([Step::Text(")"), Step::Node(c), Step::Text("(")]);
        }
    };
    nested(&f.roots, &mut stack);
    while let Some(step) = stack.pop() {
        let c = match step {
            Step::Text(t) => {
                out.push_str(t);
                continue;
            }
            Step::Node(c) => c,
        };
        match f.item[c] {
            Some(i) => {
                out.push_str(&items[i].number.to_string());
                match f.children[c].as_slice() {
                    [] => {}
                    [only] => stack.extend([Step::Node(*only), Step::Text(" ")]),
                    many => {
                        nested(many, &mut stack);
                        stack.push(Step::Text(" "));
                    }
                }
            }
            None => nested(&f.children[c], &mut stack),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u32, id: &str, refs: &[&str], date: i64, subject: &str) -> Item {
        Item {
            number: n,
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: refs.iter().map(|r| r.to_string()).collect(),
            date,
            base_subject: message::subject::base_subject(subject),
            reply: message::subject::is_reply_or_forward(subject),
        }
    }

    #[test]
    fn references_chains_and_branches() {
        let items = vec![
            item(1, "a", &[], 10, "plan"),
            item(2, "b", &["a"], 20, "Re: plan"),
            item(3, "c", &["a", "b"], 30, "Re: plan"),
            item(4, "d", &["a"], 25, "Re: plan"),
            item(5, "e", &[], 5, "other"),
        ];
        let t = references(&items);
        assert_eq!(render(&t, &items), "(5)(1 (2 3)(4))");
    }

    #[test]
    fn missing_parents_make_dummies() {
        // Two replies to a message that is not here: a dummy at the top
        // with two children; one reply alone: promoted.
        let items = vec![
            item(1, "x", &["gone"], 10, "Re: lost"),
            item(2, "y", &["gone"], 20, "Re: lost"),
            item(3, "z", &["gone2"], 30, "Re: alone"),
        ];
        let t = references(&items);
        assert_eq!(render(&t, &items), "((1)(2))(3)");
    }

    #[test]
    fn loops_and_duplicates_do_not_break_it() {
        let items = vec![
            item(1, "a", &["b"], 10, "x"),
            item(2, "b", &["a"], 20, "Re: x"),
            item(3, "a", &[], 30, "dup"),
        ];
        let t = references(&items);
        let text = render(&t, &items);
        for n in ["1", "2", "3"] {
            assert_eq!(text.matches(n).count(), 1, "{text}");
        }
    }

    #[test]
    fn same_subject_threads_are_grouped() {
        // No references at all: an original and its replies by subject.
        let items = vec![
            item(1, "a", &[], 10, "meeting"),
            item(2, "b", &[], 20, "Re: meeting"),
            item(3, "c", &[], 30, "RE: meeting"),
            item(4, "d", &[], 40, "something else"),
        ];
        let t = references(&items);
        assert_eq!(render(&t, &items), "(1 (2)(3))(4)");
    }

    /// A conversation of many messages, each a reply to the one before:
    /// anyone can send such a chain into a mailbox. THREAD REFERENCES on
    /// it runs within a session task's stack (tokio's default: 2 MiB) and
    /// in time linear in the chain, not its square.
    #[test]
    fn a_long_chain_fits_a_task_stack() {
        const N: usize = 50_000;
        let items: Vec<Item> = (0..N)
            .map(|i| {
                let refs: Vec<String> = (i.saturating_sub(3)..i).map(|r| r.to_string()).collect();
                let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                item(i as u32 + 1, &i.to_string(), &refs, i as i64, "Re: long")
            })
            .collect();
        let text = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let t = references(&items);
                render(&t, &items)
            })
            .unwrap()
            .join()
            .unwrap();
        let expected: Vec<String> = (1..=N).map(|n| n.to_string()).collect();
        assert_eq!(text, format!("({})", expected.join(" ")));
    }

    #[test]
    fn ordered_subject_threads() {
        let items = vec![
            item(1, "", &[], 30, "b"),
            item(2, "", &[], 10, "Re: a"),
            item(3, "", &[], 20, "a"),
            item(4, "", &[], 40, "Re: b"),
            item(5, "", &[], 5, "c"),
        ];
        let t = ordered_subject(&items);
        assert_eq!(render(&t, &items), "(5)(2 3)(1 4)");
    }
}
