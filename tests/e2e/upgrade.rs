//! A store written before issue 20 (catalog layout 1), made by that build's binary
//! (`tests/fixtures/layout1`, see its README), opened by this build: upgraded in place, it
//! prints exactly what the old binary printed, before and after its records move to cold.

use std::path::{Path, PathBuf};

use crate::support::Workdir;

const WARM_RUN: &str = "01M8YAPXS6QXCJN5VXZ73A3S74";
const HOT_RUN: &str = "01M8YAPXYZMM5DJGW6DXVAYECP";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/layout1")
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture().join(name)).expect("fixture output")
}

/// The fixture as `.benchfleet` of `w`.
fn install(w: &Workdir) {
    let root = w.path().join(".benchfleet");
    let pack = "warm/warm/f5/6a/f56ab8abdb4842b5a2211db1194227cdb54cc9b7ad8054c782f9562ee97b5867";
    std::fs::create_dir_all(root.join(pack).parent().unwrap()).unwrap();
    std::fs::copy(fixture().join(pack), root.join(pack)).unwrap();
    let z = std::fs::read(fixture().join("catalog.redb.zst")).unwrap();
    std::fs::write(
        root.join("catalog.redb"),
        zstd::decode_all(z.as_slice()).unwrap(),
    )
    .unwrap();
}

fn assert_prints_as_before(w: &Workdir, when: &str) {
    for (run, stem) in [(WARM_RUN, "show-warm-run"), (HOT_RUN, "show-hot-run")] {
        let text = w.run(&["show", run]);
        assert_eq!(
            text.stdout(),
            expected(&format!("{stem}.txt")),
            "{when}: {text:?}"
        );
        let json = w.run(&["show", run, "--format", "json"]);
        assert_eq!(json.stdout(), expected(&format!("{stem}.json")), "{when}");
    }
    assert_eq!(
        w.run(&["history"]).stdout(),
        expected("history.txt"),
        "{when}"
    );
    assert_eq!(
        w.run(&["history", "--format", "json"]).stdout(),
        expected("history.json"),
        "{when}"
    );
}

#[test]
fn a_store_of_layout_1_is_upgraded_and_shows_the_same() {
    let w = Workdir::new();
    install(&w);
    let before = std::fs::metadata(w.path().join(".benchfleet/catalog.redb"))
        .unwrap()
        .len();
    assert_prints_as_before(&w, "after the upgrade");
    let after = std::fs::metadata(w.path().join(".benchfleet/catalog.redb"))
        .unwrap()
        .len();
    assert!(after < before, "the upgrade compacts: {after} >= {before}");

    let status = w.json(&["tier", "status", "--json"]);
    let records = |i: usize| status["tiers"][i]["records"].as_u64().unwrap();
    assert_eq!([records(0), records(1), records(2)], [8, 8, 0], "{status}");
    let verify = w.run(&["tier", "verify", "--json"]);
    assert_eq!(verify.code(), 0, "{verify:?}");

    let migrate = w.run(&["tier", "migrate", "--as-of", "2030-01-01"]);
    assert_eq!(migrate.code(), 0, "{migrate:?}");
    let verify = w.run(&["tier", "verify", "--json"]);
    assert_eq!(verify.code(), 0, "{verify:?}");
    assert_prints_as_before(&w, "after moving every record to cold");
}
