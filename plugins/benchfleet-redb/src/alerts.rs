//! [`AlertCatalog`] over the `alerts` table: alert id → the alert as JSON. Alerts are few (one
//! per regression found), so they are listed by reading the whole table.

use async_trait::async_trait;
use redb::{ReadTransaction, ReadableTable, TableError};

use benchfleet_store::{
    Alert, AlertCatalog, AlertFilter, ErrorKind, PutOutcome, Result, StoreError, TriageUpdate,
    alerts::alert_order,
};

use crate::writer::{Done, Work};
use crate::{ALERTS, Error, RedbStore};

fn decode(id: &str, bytes: &[u8]) -> Result<Alert, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Store(
            StoreError::new(
                ErrorKind::Decode,
                "redb",
                "decode",
                format!(
                    "stored alert cannot be decoded ({e}); was it written by a newer benchfleet?"
                ),
            )
            .with_key(id),
        )
    })
}

/// Every stored alert matching `filter` (none when the table does not exist yet).
fn read_alerts(txn: &ReadTransaction, filter: &AlertFilter) -> Result<Vec<Alert>, Error> {
    let table = match txn.open_table(ALERTS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for item in table.iter()? {
        let (k, v) = item?;
        let a = decode(k.value(), v.value())?;
        if filter.matches(&a) {
            out.push(a);
        }
    }
    out.sort_by(alert_order);
    out.truncate(filter.limit.unwrap_or(usize::MAX));
    Ok(out)
}

fn read_alert(txn: &ReadTransaction, id: &str) -> Result<Option<Alert>, Error> {
    let table = match txn.open_table(ALERTS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(v) = table.get(id)? else {
        return Ok(None);
    };
    decode(id, v.value()).map(Some)
}

#[async_trait]
impl AlertCatalog for RedbStore {
    async fn put_alerts(&self, alerts: &[Alert]) -> Result<usize> {
        if alerts.is_empty() {
            return Ok(0);
        }
        match self
            .write("put_alerts", Work::PutAlerts(alerts.to_vec()))
            .await?
        {
            Done::Put(v) => Ok(v.iter().filter(|o| **o == PutOutcome::Created).count()),
            _ => Ok(0),
        }
    }

    async fn get_alert(&self, id: &str) -> Result<Option<Alert>> {
        let id = id.to_owned();
        self.read("get_alert", move |txn| read_alert(txn, &id))
            .await
    }

    async fn find_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let filter = filter.clone();
        self.read("find_alerts", move |txn| read_alerts(txn, &filter))
            .await
    }

    async fn triage_alerts(&self, ids: &[String], update: &TriageUpdate) -> Result<Vec<Alert>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.write(
            "triage_alerts",
            Work::TriageAlerts {
                ids: ids.to_vec(),
                update: update.clone(),
            },
        )
        .await?;
        let ids = ids.to_vec();
        self.read("triage_alerts", move |txn| {
            let mut out = Vec::new();
            for id in &ids {
                out.extend(read_alert(txn, id)?);
            }
            Ok(out)
        })
        .await
    }
}
