use super::*;
use crate::testing::{mem_storage, runs};

fn a_run() -> RunInfo {
    new_run(host::new_run_id(), "test", "test", BTreeMap::new())
}

#[test]
fn interrupted_wins_over_failed_which_wins_over_succeeded() {
    for (interrupted, failed, want) in [
        (false, false, RunStatus::Succeeded),
        (false, true, RunStatus::Failed),
        (true, false, RunStatus::Interrupted),
        (true, true, RunStatus::Interrupted),
    ] {
        assert_eq!(final_status(interrupted, failed), want);
    }
}

#[tokio::test]
async fn finish_writes_the_final_status() {
    let storage = mem_storage();
    let s = Session::begin(&storage, a_run()).await.unwrap();
    assert_eq!(runs(&storage).await[0].status, RunStatus::Running);
    let done = s.finish(RunStatus::Succeeded).await.unwrap();
    assert!(done.series.is_none() && done.warnings.is_empty());
    let stored = &runs(&storage).await[0];
    assert_eq!(stored.status, RunStatus::Succeeded);
    assert!(stored.finished_at.is_some());
}

/// Waits (bounded) until the background end of a dropped session is written.
async fn status_after_drop(storage: &Storage) -> RunStatus {
    for _ in 0..1000 {
        let status = runs(storage).await.first().map(|r| r.status);
        if let Some(status) = status
            && status != RunStatus::Running
        {
            return status;
        }
        tokio::task::yield_now().await;
    }
    RunStatus::Running
}

#[tokio::test]
async fn a_session_dropped_unfinished_ends_failed_or_interrupted() {
    let storage = mem_storage();
    drop(Session::begin(&storage, a_run()).await.unwrap());
    assert_eq!(status_after_drop(&storage).await, RunStatus::Failed);

    let storage = mem_storage();
    let mut s = Session::start(&storage, a_run());
    s.set_interrupted();
    drop(s);
    assert_eq!(status_after_drop(&storage).await, RunStatus::Interrupted);
}

#[tokio::test]
async fn tags_added_before_the_end_are_stored() {
    let storage = mem_storage();
    let mut s = Session::start(&storage, a_run());
    s.tags_mut().insert("k".into(), "v".into());
    s.finish(RunStatus::Failed).await.unwrap();
    assert_eq!(runs(&storage).await[0].tags["k"], "v");
}
