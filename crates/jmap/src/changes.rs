//! `Foo/changes` (RFC 8620 §5.2) from the store's change log: the rows
//! after the client's state folded into created / updated / destroyed,
//! with `maxChanges` honoured by stopping at a state in between.

use std::collections::HashMap;

use store::{Change, ChangeRow};

/// The answer of a `/changes` call, ids still numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Folded {
    pub new_state: u64,
    pub has_more: bool,
    pub created: Vec<i64>,
    pub updated: Vec<i64>,
    pub destroyed: Vec<i64>,
    /// Mailbox/changes: every update was only of counts (RFC 8621 §2.2).
    pub only_counts: bool,
}

/// Fold `rows` (the changes after `since`, oldest first; `more`: the
/// store had further rows) into at most `max` objects. An object created
/// and destroyed within the window is left out (§5.2: the client never
/// saw it); one created and then updated is only created.
pub fn fold(since: u64, rows: &[ChangeRow], max: usize, more: bool) -> Folded {
    let mut first: HashMap<i64, Change> = HashMap::new();
    let mut last: HashMap<i64, Change> = HashMap::new();
    let mut order: Vec<i64> = Vec::new();
    let mut only_counts = true;
    let mut new_state = since;
    let mut cut = more;
    for (i, row) in rows.iter().enumerate() {
        if !first.contains_key(&row.object) && order.len() == max {
            cut = true;
            break;
        }
        // Several rows of one transaction share nothing but order; stop
        // only between objects, so the state given is one we stood at.
        first.entry(row.object).or_insert_with(|| {
            order.push(row.object);
            row.change
        });
        last.insert(row.object, row.change);
        if row.change != Change::Counts {
            only_counts = false;
        }
        new_state = row.seq;
        if i + 1 == rows.len() {
            cut = more;
        }
    }
    let mut out = Folded {
        new_state,
        has_more: cut,
        only_counts,
        ..Folded::default()
    };
    for object in order {
        let (a, z) = (first[&object], last[&object]);
        match (a, z) {
            (Change::Created, Change::Destroyed) => {}
            (Change::Created, _) => out.created.push(object),
            (_, Change::Destroyed) => out.destroyed.push(object),
            _ => out.updated.push(object),
        }
    }
    out
}

/// A `Foo/changes` call (RFC 8620 §5.2): `sinceState`, `maxChanges`;
/// ids made by `id_of`. Mailbox/changes adds `updatedProperties`.
pub async fn method(
    context: &crate::Context<'_>,
    args: &crate::args::Args,
    kind: store::DataType,
    id_of: fn(i64) -> String,
) -> Result<serde_json::Value, crate::MethodError> {
    use crate::MethodError;
    let since = crate::args::string(args, "sinceState")?
        .ok_or_else(|| MethodError::InvalidArguments("sinceState is required".into()))?;
    let max = match crate::args::unsigned(args, "maxChanges")? {
        Some(0) => {
            return Err(MethodError::InvalidArguments(
                "maxChanges must be above 0".into(),
            ));
        }
        Some(n) => (n as usize).min(MAX_CHANGES),
        None => MAX_CHANGES,
    };
    let since = crate::args::state(&since).ok_or(MethodError::CannotCalculateChanges)?;
    let store = context.store();
    let current = store.change_state(context.account.id, kind).await?;
    if since > current || since < store.change_floor(context.account.id).await? {
        return Err(MethodError::CannotCalculateChanges);
    }
    // Rows, not objects, are limited by the store: ask for enough rows
    // that `max` objects fit, and say there is more when rows were left.
    let limit = max.saturating_mul(4).max(64);
    let rows = store
        .changes_after(context.account.id, kind, since, limit)
        .await?;
    let folded = fold(since, &rows, max, rows.len() == limit);
    let ids = |v: &[i64]| v.iter().map(|o| id_of(*o)).collect::<Vec<_>>();
    let mut out = serde_json::json!({
        "accountId": context.account_id,
        "oldState": since.to_string(),
        "newState": folded.new_state.to_string(),
        "hasMoreChanges": folded.has_more,
        "created": ids(&folded.created),
        "updated": ids(&folded.updated),
        "destroyed": ids(&folded.destroyed),
    });
    if kind == store::DataType::Mailbox {
        out["updatedProperties"] = if folded.only_counts && !folded.updated.is_empty() {
            serde_json::json!([
                "totalEmails",
                "unreadEmails",
                "totalThreads",
                "unreadThreads"
            ])
        } else {
            serde_json::Value::Null
        };
    }
    Ok(out)
}

/// The most objects one `/changes` answer lists.
pub const MAX_CHANGES: usize = 5000;

/// The most change rows one `/queryChanges` call reads; past this the
/// client is told to query again (`cannotCalculateChanges`).
const MAX_QUERY_CHANGE_ROWS: usize = 50_000;

/// The `sinceQueryState` of a `/queryChanges` call, which must be a state
/// of this type not after `state`, the one the current results are at,
/// and not before the log's floor.
pub async fn since_query_state(
    context: &crate::Context<'_>,
    args: &crate::args::Args,
    state: u64,
) -> Result<u64, crate::MethodError> {
    use crate::MethodError;
    let since = crate::args::string(args, "sinceQueryState")?
        .ok_or_else(|| MethodError::InvalidArguments("sinceQueryState is required".into()))?;
    let floor = context.store().change_floor(context.account.id).await?;
    crate::args::state(&since)
        .filter(|s| *s <= state && *s >= floor)
        .ok_or(MethodError::CannotCalculateChanges)
}

/// The objects of `kind` that changed after `since` up to `state`
/// (creations, updates, destructions alike), by the changes `counts`:
/// a query whose results do not depend on a mailbox's counts passes a
/// filter that leaves `Change::Counts` out.
pub async fn changed_objects(
    context: &crate::Context<'_>,
    kind: store::DataType,
    (since, state): (u64, u64),
    counts: fn(&ChangeRow) -> bool,
) -> Result<Vec<i64>, crate::MethodError> {
    if since == state {
        return Ok(Vec::new());
    }
    let rows = context
        .store()
        .changes_after(context.account.id, kind, since, MAX_QUERY_CHANGE_ROWS)
        .await?;
    if rows.len() == MAX_QUERY_CHANGE_ROWS {
        return Err(crate::MethodError::CannotCalculateChanges);
    }
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .take_while(|r| r.seq <= state)
        .filter(counts)
        .map(|r| r.object)
        .filter(|o| seen.insert(*o))
        .collect())
}

/// The answer of a `Foo/queryChanges` call (RFC 8620 §5.6), from the
/// query's current `results` (in order, at `state`) and the ids that
/// `may` have moved since `since`: the objects that changed, and those
/// whose place depends on them. Every one of them is in `removed` (the
/// RFC lets a server name ids that were not in the old results), and
/// those in the current results are in `added` with their index, so a
/// client that splices them out and back in has the current results.
/// `upToId` is not used: the filters may be on mutable properties.
pub fn query_changes(
    context: &crate::Context<'_>,
    args: &crate::args::Args,
    (since, state): (u64, u64),
    results: &[String],
    may: Vec<String>,
) -> Result<serde_json::Value, crate::MethodError> {
    use crate::MethodError;
    let mut seen = std::collections::HashSet::new();
    let removed: Vec<String> = may
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect();
    if crate::args::unsigned(args, "maxChanges")?.is_some_and(|max| removed.len() as u64 > max) {
        return Err(MethodError::TooManyChanges);
    }
    let added: Vec<serde_json::Value> = results
        .iter()
        .enumerate()
        .filter(|(_, id)| seen.contains(*id))
        .map(|(index, id)| serde_json::json!({"id": id, "index": index}))
        .collect();
    let mut out = serde_json::json!({
        "accountId": context.account_id,
        "oldQueryState": since.to_string(),
        "newQueryState": state.to_string(),
        "removed": removed,
        "added": added,
    });
    if crate::args::boolean(args, "calculateTotal", false)? {
        out["total"] = serde_json::json!(results.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64, object: i64, change: Change) -> ChangeRow {
        ChangeRow {
            seq,
            object,
            change,
        }
    }

    #[test]
    fn folds_a_lifetime_into_one_entry() {
        let rows = [
            row(11, 1, Change::Created),
            row(12, 1, Change::Updated),
            row(13, 2, Change::Updated),
            row(14, 3, Change::Created),
            row(15, 3, Change::Destroyed),
            row(16, 4, Change::Destroyed),
        ];
        let f = fold(10, &rows, 100, false);
        assert_eq!(f.created, vec![1]);
        assert_eq!(f.updated, vec![2]);
        assert_eq!(f.destroyed, vec![4]);
        assert_eq!(f.new_state, 16);
        assert!(!f.has_more);
        assert!(!f.only_counts);
    }

    #[test]
    fn max_changes_stops_at_a_state_in_between() {
        let rows = [
            row(2, 1, Change::Created),
            row(3, 2, Change::Created),
            row(4, 1, Change::Updated),
            row(5, 3, Change::Created),
        ];
        let f = fold(1, &rows, 2, false);
        assert_eq!(f.created, vec![1, 2]);
        assert_eq!(f.new_state, 4);
        assert!(f.has_more);
        let rest = fold(4, &rows[3..], 2, false);
        assert_eq!(rest.created, vec![3]);
        assert!(!rest.has_more);
    }

    #[test]
    fn counts_only_is_said() {
        let f = fold(0, &[row(1, 7, Change::Counts)], 10, false);
        assert!(f.only_counts);
        assert_eq!(f.updated, vec![7]);
        assert_eq!(fold(5, &[], 10, false).new_state, 5);
    }
}
