//! Benchmarks are measured alone by default (issue 15): at the default `-j` the quickstart's
//! benchmarks never run beside anything else of the suite; a benchmark that opts in to sharing
//! (`exclusive = false`) does.

use std::path::Path;

use crate::support::{Workdir, stored_records};

fn concurrent_tags(w: &Workdir, kind: &str) -> Vec<(String, String)> {
    stored_records(w)
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["tags"]["run.concurrent"]
                    .as_str()
                    .unwrap_or("absent")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_quickstart_at_the_default_jobs_measures_every_benchmark_alone() {
    let w = Workdir::with_fs_hot();
    let quickstart =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples/quickstart.toml");
    // No -j: the default, one job per available core.
    let out = w.run(&["run", quickstart.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        !out.stdout().contains("beside others") && !out.stderr().contains("beside others"),
        "{out:?}"
    );
    let tags = concurrent_tags(&w, "benchmark");
    let names: std::collections::BTreeSet<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 6, "every benchmark stored: {names:?}");
    for (name, concurrent) in &tags {
        assert_eq!(concurrent, "false", "`{name}` ran beside others: {out:?}");
    }
}

#[test]
fn benchmarks_that_opt_in_share_the_machine() {
    // Each benchmark's only run waits until the other has started: it can only succeed when
    // both run at once (the timeout ends it otherwise).
    let w = Workdir::with_fs_hot();
    let suite = w.file(
        "s.toml",
        r#"
        [suite]
        name = "share"
        [defaults]
        exclusive = false
        shell = "sh"
        runs = 1
        timeout = "30s"
        [[benchmark]]
        name = "left"
        command = "touch started.left; while [ ! -e started.right ]; do sleep 0.01; done"
        [[benchmark]]
        name = "right"
        command = "touch started.right; while [ ! -e started.left ]; do sleep 0.01; done"
        "#,
    );
    let out = w.run(&["run", suite.to_str().unwrap(), "-j", "2"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let tags = concurrent_tags(&w, "benchmark");
    assert_eq!(tags.len(), 2, "{tags:?}");
    for (name, concurrent) in &tags {
        assert_eq!(concurrent, "true", "`{name}` shared and is tagged so");
    }
    assert!(out.stdout().contains("ran beside others"), "{out:?}");
}
