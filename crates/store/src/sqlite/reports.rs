//! DMARC reporting (RFC 7489 §7): evaluations waiting for the next aggregate
//! report, and the reports other receivers sent us (DMARC aggregate and
//! TLS-RPT, RFC 8460).
//!
//! Implementation notes
//! - Counting happens at report time (GROUP BY on the serialized row), so
//!   recording an evaluation is one small INSERT.

use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::reports::{Latest, ReportStore, RowCount, fold_evaluations};
use crate::types::*;

const REPORT_COLUMNS: &str =
    "id, received_at, org, report_id, domain, begin, end, messages, failed, kind";

fn received(r: &Row<'_>) -> rusqlite::Result<ReceivedReport> {
    let kind: String = r.get(9)?;
    Ok(ReceivedReport {
        kind: ReportKind::parse(&kind).unwrap_or(ReportKind::Dmarc),
        id: r.get(0)?,
        received_at: r.get(1)?,
        org: r.get(2)?,
        report_id: r.get(3)?,
        domain: r.get(4)?,
        begin: r.get(5)?,
        end: r.get(6)?,
        messages: r.get::<_, i64>(7)? as u64,
        failed: r.get::<_, i64>(8)? as u64,
        document: Vec::new(),
    })
}

#[async_trait::async_trait]
impl ReportStore for SqliteStore {
    async fn record_evaluations(&self, evaluations: Vec<NewEvaluation>) -> Result<()> {
        let list = evaluations;
        self.write(move |c| {
            let mut insert = c
                .prepare_cached(
                    "INSERT INTO dmarc_evaluations(at, domain, rua, policy, row) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for e in &list {
                insert
                    .execute(params![e.at, e.domain, e.rua, e.policy, e.row])
                    .map_err(sql)?;
            }
            Ok(())
        })
        .await
    }

    async fn evaluations_before(&self, until: i64) -> Result<Vec<DomainEvaluations>> {
        self.read(move |c| {
            // The latest rua and policy of each domain.
            let latest: Vec<Latest> = c
                .prepare_cached(
                    "SELECT domain, rua, policy FROM dmarc_evaluations WHERE id IN
                       (SELECT MAX(id) FROM dmarc_evaluations WHERE at < ?1 GROUP BY domain)",
                )
                .and_then(|mut st| {
                    st.query_map([until], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(sql)?;
            let counts: Vec<RowCount> = c
                .prepare_cached(
                    "SELECT domain, row, COUNT(*), MIN(at), MAX(at) FROM dmarc_evaluations
                       WHERE at < ?1 GROUP BY domain, row ORDER BY domain, MIN(id)",
                )
                .and_then(|mut st| {
                    st.query_map([until], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect()
                })
                .map_err(sql)?;
            Ok(fold_evaluations(latest, counts))
        })
        .await
    }

    async fn delete_evaluations(&self, domain: &str, until: i64) -> Result<()> {
        let domain = domain.to_string();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM dmarc_evaluations WHERE domain = ?1 AND at < ?2")
                .and_then(|mut st| st.execute(params![domain, until]))
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn add_received_report(&self, report: ReceivedReport) -> Result<Option<i64>> {
        let r = report;
        self.write(move |c| {
            let added = c
                .prepare_cached(
                    "INSERT INTO received_reports(received_at, org, report_id, domain, begin, end, messages, failed, document, kind)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(kind, org, report_id) DO NOTHING",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        r.received_at,
                        r.org,
                        r.report_id,
                        r.domain,
                        r.begin,
                        r.end,
                        r.messages as i64,
                        r.failed as i64,
                        r.document,
                        r.kind.as_str()
                    ])
                })
                .map_err(sql)?;
            Ok((added == 1).then(|| c.last_insert_rowid()))
        })
        .await
    }

    async fn received_reports(&self) -> Result<Vec<ReceivedReport>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {REPORT_COLUMNS} FROM received_reports ORDER BY id"
            ))
            .and_then(|mut st| st.query_map([], received)?.collect())
            .map_err(sql)
        })
        .await
    }

    async fn received_report(&self, id: i64) -> Result<Option<ReceivedReport>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {REPORT_COLUMNS}, document FROM received_reports WHERE id = ?1"
            ))
            .and_then(|mut st| {
                st.query_row([id], |r| {
                    let mut report = received(r)?;
                    report.document = r.get(10)?;
                    Ok(report)
                })
                .optional()
            })
            .map_err(sql)
        })
        .await
    }
}
