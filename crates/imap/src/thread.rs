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

/// A node of a thread tree; `item` None is a dummy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub item: Option<usize>,
    pub children: Vec<Node>,
}

/// RFC 5256 §2.2 ORDEREDSUBJECT: by base subject, then date; the first
/// message of a subject starts the thread, the others are its children.
pub fn ordered_subject(items: &[Item]) -> Vec<Node> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        (&items[a].base_subject, items[a].date, a).cmp(&(&items[b].base_subject, items[b].date, b))
    });
    let mut threads: Vec<Node> = Vec::new();
    let mut current: Option<&str> = None;
    for i in order {
        let subject = items[i].base_subject.as_str();
        match (current, threads.last_mut()) {
            (Some(c), Some(t)) if c == subject => t.children.push(Node {
                item: Some(i),
                children: Vec::new(),
            }),
            _ => {
                threads.push(Node {
                    item: Some(i),
                    children: Vec::new(),
                });
                current = Some(subject);
            }
        }
    }
    threads.sort_by_key(|t| t.item.map(|i| (items[i].date, i)));
    threads
}

/// The containers of the REFERENCES algorithm.
struct Tree {
    item: Vec<Option<usize>>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl Tree {
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
        if self.is_under(p, c) {
            return false;
        }
        self.unlink(c);
        self.parent[c] = Some(p);
        self.children[p].push(c);
        true
    }
}

/// RFC 5256 §2.2 REFERENCES (after Jamie Zawinski's algorithm).
pub fn references(items: &[Item]) -> Vec<Node> {
    let mut t = Tree {
        item: Vec::new(),
        parent: Vec::new(),
        children: Vec::new(),
    };
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, m) in items.iter().enumerate() {
        // (1) The message's own container: its Message-ID's, filling a
        // dummy made by an earlier reference; without an id, or with one a
        // message already has, a container of its own.
        let own = match m
            .message_id
            .as_ref()
            .and_then(|id| by_id.get(id).map(|&c| (id, c)))
        {
            Some((_, c)) if t.item[c].is_none() => {
                t.item[c] = Some(i);
                c
            }
            Some(_) => t.add(Some(i)),
            None => {
                let c = t.add(Some(i));
                if let Some(id) = &m.message_id {
                    by_id.insert(id.clone(), c);
                }
                c
            }
        };
        // (1A) Link the references in order, keeping existing parents.
        let mut previous: Option<usize> = None;
        for r in &m.references {
            let c = match by_id.get(r) {
                Some(&c) => c,
                None => {
                    let c = t.add(None);
                    by_id.insert(r.clone(), c);
                    c
                }
            };
            if let Some(p) = previous
                && t.parent[c].is_none()
            {
                t.link(p, c);
            }
            previous = Some(c);
        }
        // (1B) The last reference is the parent of the message.
        match previous {
            Some(p) if p != own => {
                if !t.is_under(p, own) {
                    t.link(p, own);
                }
            }
            _ => t.unlink(own),
        }
    }
    // (2) The root set; (3) dummies pruned.
    let roots: Vec<usize> = (0..t.item.len())
        .filter(|&c| t.parent[c].is_none())
        .collect();
    let roots = prune(&mut t, roots, true);
    let mut nodes: Vec<Node> = roots.iter().map(|&c| build(&t, c)).collect();
    // (4) The root set by date.
    for n in nodes.iter_mut() {
        sort_children(n, items);
    }
    sort_level(&mut nodes, items);
    // (5) Threads with the same base subject together.
    let mut nodes = group_by_subject(nodes, items);
    // (6) Every set of siblings by date.
    for n in nodes.iter_mut() {
        sort_children(n, items);
    }
    sort_level(&mut nodes, items);
    nodes
}

/// (3) A dummy without children goes; one with children gives them to its
/// level, except at the top where it stays when it has more than one.
fn prune(t: &mut Tree, level: Vec<usize>, top: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for c in level {
        let below = std::mem::take(&mut t.children[c]);
        let below = prune(t, below, false);
        if t.item[c].is_some() {
            t.children[c] = below;
            out.push(c);
        } else if below.is_empty() {
        } else if !top || below.len() == 1 {
            out.extend(below);
        } else {
            t.children[c] = below;
            out.push(c);
        }
    }
    out
}

fn build(t: &Tree, c: usize) -> Node {
    Node {
        item: t.item[c],
        children: t.children[c].iter().map(|&x| build(t, x)).collect(),
    }
}

/// The date a node sorts by: its message's, or a dummy's first child's.
fn node_date(n: &Node, items: &[Item]) -> (i64, usize) {
    match n.item {
        Some(i) => (items[i].date, i),
        None => n
            .children
            .first()
            .map(|c| node_date(c, items))
            .unwrap_or((i64::MAX, usize::MAX)),
    }
}

fn sort_level(level: &mut [Node], items: &[Item]) {
    level.sort_by_key(|n| node_date(n, items));
}

fn sort_children(n: &mut Node, items: &[Item]) {
    for c in n.children.iter_mut() {
        sort_children(c, items);
    }
    sort_level(&mut n.children, items);
}

fn subject_of<'a>(n: &Node, items: &'a [Item]) -> &'a str {
    match n.item {
        Some(i) => &items[i].base_subject,
        None => n
            .children
            .first()
            .map(|c| subject_of(c, items))
            .unwrap_or(""),
    }
}

fn is_reply(n: &Node, items: &[Item]) -> bool {
    n.item.is_some_and(|i| items[i].reply)
}

/// (5) Gather the top-level threads that share a base subject.
fn group_by_subject(roots: Vec<Node>, items: &[Item]) -> Vec<Node> {
    // (5B) One entry per subject: a dummy wins over a message, an original
    // over a reply.
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (k, n) in roots.iter().enumerate() {
        let s = subject_of(n, items);
        if s.is_empty() {
            continue;
        }
        match table.get(s).copied() {
            None => {
                table.insert(s, k);
            }
            Some(old) => {
                let (o, c) = (&roots[old], n);
                if (o.item.is_some() && c.item.is_none())
                    || (o.item.is_some()
                        && c.item.is_some()
                        && is_reply(o, items)
                        && !is_reply(c, items))
                {
                    table.insert(s, k);
                }
            }
        }
    }
    // (5C) Merge each other thread into the table's.
    let mut slots: Vec<Option<Node>> = roots.into_iter().map(Some).collect();
    for k in 0..slots.len() {
        let Some(n) = slots[k].as_ref() else { continue };
        let s = subject_of(n, items);
        if s.is_empty() {
            continue;
        }
        let Some(&t) = table.get(s) else { continue };
        if t == k {
            continue;
        }
        let Some(mut current) = slots[k].take() else {
            continue;
        };
        let Some(mut kept) = slots[t].take() else {
            slots[k] = Some(current);
            continue;
        };
        kept = match (kept.item.is_none(), current.item.is_none()) {
            (true, true) => {
                kept.children.append(&mut current.children);
                kept
            }
            (true, false) => {
                kept.children.push(current);
                kept
            }
            (false, _) if is_reply(&current, items) && !is_reply(&kept, items) => {
                kept.children.push(current);
                kept
            }
            _ => Node {
                item: None,
                children: vec![kept, current],
            },
        };
        slots[t] = Some(kept);
    }
    slots.into_iter().flatten().collect()
}

/// RFC 5256 §4: `(1 2 3)(4 (5)(6))((7)(8))`.
pub fn render(threads: &[Node], items: &[Item]) -> String {
    let mut out = String::new();
    for t in threads {
        out.push('(');
        members(t, items, &mut out);
        out.push(')');
    }
    out
}

fn members(n: &Node, items: &[Item], out: &mut String) {
    let nested = |children: &[Node], out: &mut String| {
        for c in children {
            out.push('(');
            members(c, items, out);
            out.push(')');
        }
    };
    match n.item {
        Some(i) => {
            out.push_str(&items[i].number.to_string());
            match n.children.as_slice() {
                [] => {}
                [only] => {
                    out.push(' ');
                    members(only, items, out);
                }
                many => {
                    out.push(' ');
                    nested(many, out);
                }
            }
        }
        None => nested(&n.children, out),
    }
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
