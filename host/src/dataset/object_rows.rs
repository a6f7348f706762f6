//! The rows that make uploaded objects visible, written in groups. A push uploads several
//! objects at once (DVC's http remote: four per core of its machine), and on SQLite each
//! upload's own write transaction collided with the others' (one writer at a time): the loser
//! slept in SQLite's busy handler, 1, 2, 5 ... 100 ms, more the busier the machine. Here one
//! write runs at a time; the rows that arrive meanwhile wait for it (woken at its end, not
//! polling) and go together in the next one, one transaction (one commit on PostgreSQL too).

use super::records::{self, NewObject};
use crate::error::{Error, Result};
use crate::store::Store;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A row waiting for its group, and where its outcome goes.
type Waiting = (NewObject, oneshot::Sender<Result<bool>>);

/// The rows waiting to be written, and the turn to write them.
#[derive(Default)]
pub(super) struct ObjectRows {
    waiting: Mutex<Vec<Waiting>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl ObjectRows {
    /// Makes `object` visible and counts it in its project's usage; whether it is new (false:
    /// the project had it).
    pub(super) async fn insert(&self, store: &Store, object: NewObject) -> Result<bool> {
        let (sender, mut outcome) = oneshot::channel();
        self.waiting().push((object, sender));
        let turn = self.turn.clone().lock_owned().await;
        // The group written before this turn may have taken it.
        if let Ok(written) = outcome.try_recv() {
            return written;
        }
        let group = std::mem::take(&mut *self.waiting());
        let store = store.clone();
        // Written on a task of its own, so that the turn ends with the write even if this
        // request is dropped (its client gone) meanwhile.
        tokio::spawn(async move {
            let _turn = turn;
            let (objects, senders): (Vec<NewObject>, Vec<_>) = group.into_iter().unzip();
            let written = records::insert_objects(&store, &objects).await;
            for (i, sender) in senders.into_iter().enumerate() {
                let _ = sender.send(match &written {
                    Ok(created) => Ok(created[i]),
                    Err(e) => Err(e.clone()),
                });
            }
        });
        outcome
            .await
            .unwrap_or_else(|_| Err(Error::internal("an object's row was not written")))
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row as _;

    fn object(project: &str, n: u64) -> NewObject {
        NewObject {
            project: project.into(),
            oid: format!("{n:032x}"),
            size: 100 + n,
            by: "ada".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_written_together_count_each_object_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/weft.db?mode=rwc", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        let rows = Arc::new(ObjectRows::default());
        let insert = |project: &'static str, n: u64| {
            let (rows, store) = (rows.clone(), store.clone());
            tokio::spawn(async move { rows.insert(&store, object(project, n)).await.unwrap() })
        };
        // Forty uploads at once, of twenty objects each sent twice, in two projects.
        let uploads: Vec<_> = (0..40)
            .map(|i| insert(if i % 4 < 2 { "p" } else { "q" }, i / 2))
            .collect();
        let mut created = 0;
        for upload in uploads {
            created += u64::from(upload.await.unwrap());
        }
        assert_eq!(created, 20, "each object is new once");
        assert!(!insert("p", 0).await.unwrap(), "the project has it");
        let usage =
            sqlx::query("SELECT project_id, objects, bytes FROM dvc_usage ORDER BY project_id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let usage: Vec<(String, i64, i64)> = usage
            .iter()
            .map(|r| (r.get("project_id"), r.get("objects"), r.get("bytes")))
            .collect();
        // p has objects 0, 1, 4, 5, ... (i % 4 < 2 for i / 2 even), q the odd ones.
        let bytes = |odd: u64| {
            (0..20u64)
                .filter(|n| n % 2 == odd)
                .map(|n| 100 + n)
                .sum::<u64>() as i64
        };
        assert_eq!(
            usage,
            vec![("p".into(), 10, bytes(0)), ("q".into(), 10, bytes(1))]
        );
        let listed: i64 = sqlx::query("SELECT COUNT(*) AS n FROM dvc_objects")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(listed, 20);
    }
}
