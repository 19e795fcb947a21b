//! DMARC reporting in PostgreSQL (see `crate::reports`): evaluations kept
//! for the next aggregate report, and received reports (DMARC and TLS-RPT).

use tokio_postgres::Row;

use super::{PostgresStore, Prepared, pg};
use crate::error::Result;
use crate::reports::{ReportStore, fold_evaluations};
use crate::types::*;

const REPORT_COLUMNS: &str =
    "id, received_at, org, report_id, domain, begin_at, end_at, messages, failed, kind";

fn received(r: &Row) -> ReceivedReport {
    let kind: String = r.get(9);
    ReceivedReport {
        kind: ReportKind::parse(&kind).unwrap_or(ReportKind::Dmarc),
        id: r.get(0),
        received_at: r.get(1),
        org: r.get(2),
        report_id: r.get(3),
        domain: r.get(4),
        begin: r.get(5),
        end: r.get(6),
        messages: r.get::<_, i64>(7) as u64,
        failed: r.get::<_, i64>(8) as u64,
        document: Vec::new(),
    }
}

#[async_trait::async_trait]
impl ReportStore for PostgresStore {
    async fn record_evaluations(&self, evaluations: Vec<NewEvaluation>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO dmarc_evaluations(at, domain, rua, policy, row) VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(pg)?;
        for e in &evaluations {
            tx.execute(&insert, &[&e.at, &e.domain, &e.rua, &e.policy, &e.row])
                .await
                .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn evaluations_before(&self, until: i64) -> Result<Vec<DomainEvaluations>> {
        let mut client = self.client().await?;
        // One snapshot for both queries.
        let tx = super::snapshot(&mut client).await?;
        let latest = tx
            .query_p(
                "SELECT domain, rua, policy FROM dmarc_evaluations WHERE id IN
                   (SELECT max(id) FROM dmarc_evaluations WHERE at < $1 GROUP BY domain)",
                &[&until],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let counts = tx
            .query_p(
                "SELECT domain, row, count(*), min(at), max(at) FROM dmarc_evaluations
                   WHERE at < $1 GROUP BY domain, row ORDER BY domain, min(id)",
                &[&until],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        Ok(fold_evaluations(latest, counts))
    }

    async fn delete_evaluations(&self, domain: &str, until: i64) -> Result<()> {
        self.run(
            "DELETE FROM dmarc_evaluations WHERE domain = $1 AND at < $2",
            &[&domain, &until],
        )
        .await?;
        Ok(())
    }

    async fn add_received_report(&self, r: ReceivedReport) -> Result<Option<i64>> {
        let row = self.row(
                "INSERT INTO received_reports(received_at, org, report_id, domain, begin_at, end_at, messages, failed, document, kind)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (kind, org, report_id) DO NOTHING RETURNING id",
                &[
                    &r.received_at,
                    &r.org,
                    &r.report_id,
                    &r.domain,
                    &r.begin,
                    &r.end,
                    &(r.messages as i64),
                    &(r.failed as i64),
                    &r.document,
                    &r.kind.as_str(),
                ],
            ).await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn received_reports(&self) -> Result<Vec<ReceivedReport>> {
        let rows = self
            .rows(
                &format!("SELECT {REPORT_COLUMNS} FROM received_reports ORDER BY id"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(received).collect())
    }

    async fn received_report(&self, id: i64) -> Result<Option<ReceivedReport>> {
        let row = self
            .row(
                &format!("SELECT {REPORT_COLUMNS}, document FROM received_reports WHERE id = $1"),
                &[&id],
            )
            .await?;
        Ok(row.map(|r| ReceivedReport {
            document: r.get(10),
            ..received(&r)
        }))
    }
}
