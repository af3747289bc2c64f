//! [`AlertCatalog`] over `bf_alerts` (migration `0003_alerts.sql`): the alert as JSON, with the
//! columns lists filter and order on beside it. A triage is one transaction that locks the rows
//! it changes.

use async_trait::async_trait;

use benchfleet_store::{
    Alert, AlertCatalog, AlertFilter, ErrorKind, Result, StoreError, TriageUpdate,
};

use crate::PgStore;

impl PgStore {
    fn alert_from_json(&self, json: &str) -> Result<Alert> {
        serde_json::from_str(json).map_err(|e| {
            StoreError::new(
                ErrorKind::Decode,
                &self.name,
                "decode alert",
                format!(
                    "stored alert cannot be decoded ({e}); was it written by a newer benchfleet?"
                ),
            )
        })
    }

    fn alert_json(&self, a: &Alert) -> Result<String> {
        serde_json::to_string(a).map_err(|e| {
            StoreError::new(ErrorKind::Other, &self.name, "encode alert", e.to_string())
                .with_key(&a.id)
        })
    }
}

#[async_trait]
impl AlertCatalog for PgStore {
    async fn put_alerts(&self, alerts: &[Alert]) -> Result<usize> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(alerts.len());
        let mut benchmarks = Vec::with_capacity(alerts.len());
        let mut suites = Vec::with_capacity(alerts.len());
        let mut states = Vec::with_capacity(alerts.len());
        let mut ats = Vec::with_capacity(alerts.len());
        let mut jsons = Vec::with_capacity(alerts.len());
        for a in alerts {
            ids.push(a.id.clone());
            benchmarks.push(a.benchmark.clone());
            suites.push(a.suite.clone());
            states.push(a.state.as_str().to_owned());
            ats.push(a.at.0);
            jsons.push(self.alert_json(a)?);
        }
        let done = self
            .retry("put_alerts", None, || async {
                sqlx::query(
                    "INSERT INTO bf_alerts (id, benchmark, suite, state, at_ns, alert)
                     SELECT id, benchmark, suite, state, at_ns, alert::jsonb
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[])
                          AS t(id, benchmark, suite, state, at_ns, alert)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&ids)
                .bind(&benchmarks)
                .bind(&suites)
                .bind(&states)
                .bind(&ats)
                .bind(&jsons)
                .execute(&self.pool)
                .await
            })
            .await?;
        Ok(done.rows_affected() as usize)
    }

    async fn get_alert(&self, id: &str) -> Result<Option<Alert>> {
        let json: Option<String> = self
            .retry("get_alert", Some(id), || async {
                sqlx::query_scalar("SELECT alert::text FROM bf_alerts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
            })
            .await?;
        json.map(|j| self.alert_from_json(&j)).transpose()
    }

    async fn find_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let limit = filter.limit.map(|l| l.min(i64::MAX as usize) as i64);
        let state = filter.state.map(|s| s.as_str());
        let rows: Vec<String> = self
            .retry("find_alerts", None, || async {
                sqlx::query_scalar(
                    "SELECT alert::text FROM bf_alerts
                     WHERE ($1::text IS NULL OR state = $1)
                       AND ($2::text IS NULL OR benchmark = $2)
                       AND ($3::text IS NULL OR suite = $3)
                     ORDER BY at_ns DESC, id DESC
                     LIMIT $4",
                )
                .bind(state)
                .bind(filter.benchmark.as_deref())
                .bind(filter.suite.as_deref())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        rows.iter().map(|j| self.alert_from_json(j)).collect()
    }

    async fn triage_alerts(&self, ids: &[String], update: &TriageUpdate) -> Result<Vec<Alert>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let map = |op: &'static str| {
            let name = self.name.clone();
            move |e: sqlx::Error| StoreError::new(ErrorKind::Other, name.clone(), op, e.to_string())
        };
        let mut tx = self.pool.begin().await.map_err(map("triage_alerts"))?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, alert::text FROM bf_alerts WHERE id = ANY($1::text[]) FOR UPDATE",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(map("triage_alerts"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some((_, json)) = rows.iter().find(|(i, _)| i == id) else {
                return Err(StoreError::new(
                    ErrorKind::NotFound,
                    &self.name,
                    "triage_alerts",
                    "no alert with this id; nothing was changed",
                )
                .with_key(id));
            };
            let mut a = self.alert_from_json(json)?;
            a.triage(update);
            sqlx::query("UPDATE bf_alerts SET state = $2, alert = $3::jsonb WHERE id = $1")
                .bind(id)
                .bind(a.state.as_str())
                .bind(self.alert_json(&a)?)
                .execute(&mut *tx)
                .await
                .map_err(map("triage_alerts"))?;
            out.push(a);
        }
        tx.commit().await.map_err(map("triage_alerts"))?;
        Ok(out)
    }
}
