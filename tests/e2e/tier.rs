//! `benchfleet tier …` end to end: a quickstart-shaped suite's results migrated through all three
//! tiers and read back identically, the process killed at many points of a migration (fault
//! hook) and resumed, and a flipped byte reported by `tier verify`.

use std::path::Path;

use crate::support::{Out, Workdir};

/// The quickstart's shape (a generating job, a gzip level matrix, sort variants), made fast.
const QUICK_SUITE: &str = r#"
[suite]
name = "quickstart-mini"

[defaults]
runs = 4
warmup = 0

[[job]]
name = "generate"
shell = "sh"
command = "seq 1 3000 | awk '{ printf \"%d item-%d\\n\", ($1 * 7919) % 100003, $1 }' > {out}/input.txt"

[[benchmark]]
name = "gzip-{level}"
command = "gzip -{level} -c {out.generate}/input.txt"
needs = ["generate"]
matrix = { level = [1, 6, 9] }

[[benchmark]]
name = "sort-lexical"
command = "sort {out.generate}/input.txt"
needs = ["generate"]

[[benchmark]]
name = "sort-numeric"
command = "sort -n {out.generate}/input.txt"
needs = ["generate"]
"#;

/// Small blocks, segments and batches so that a few dozen records make several of each.
const SMALL: [(&str, &str); 4] = [
    ("BENCHFLEET_STORAGE__POLICY__COLD_BLOCK_BYTES", "1024"),
    ("BENCHFLEET_STORAGE__POLICY__COLD_SEGMENT_BYTES", "600"),
    ("BENCHFLEET_STORAGE__POLICY__MIGRATE_BATCH_RECORDS", "4"),
    ("BENCHFLEET_STORAGE__POLICY__WARM_DICTIONARY_BYTES", "2048"),
];

fn tier(w: &Workdir, args: &[&str], fault: Option<&str>) -> Out {
    let mut c = w.cmd(args);
    for (k, v) in SMALL {
        c.env(k, v);
    }
    if let Some(f) = fault {
        c.env("BENCHFLEET_FAULT_AFTER", f);
    }
    Out(c.output().expect("run benchfleet"))
}

fn json_of(out: &Out) -> serde_json::Value {
    serde_json::from_slice(&out.0.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// YYYY-MM-DD, `days` from now (UTC).
fn date_in(days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = secs.div_euclid(86_400) + days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Records per tier according to `tier status --json`.
fn per_tier(w: &Workdir) -> [u64; 3] {
    let out = tier(w, &["tier", "status", "--json"], None);
    assert_eq!(out.code(), 0, "{out:?}");
    let j = json_of(&out);
    let n = |i: usize| j["tiers"][i]["records"].as_u64().unwrap();
    [n(0), n(1), n(2)]
}

/// `tier verify --json`: exit code and report.
fn verify(w: &Workdir) -> (i32, serde_json::Value) {
    let out = tier(w, &["tier", "verify", "--json"], None);
    (out.code(), json_of(&out))
}

fn show_json(w: &Workdir) -> String {
    let out = w.run(&["show", "latest", "--format", "json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    out.stdout()
}

/// A workdir holding one stored run of the suite; returns it and the record count.
fn stored_run() -> (Workdir, u64) {
    let w = Workdir::new();
    let suite = w.file("suite.toml", QUICK_SUITE);
    let out = w.run(&["run", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let n = per_tier(&w)[0];
    assert_eq!(n, 1 + 5 * 4, "one job run and 5 benchmarks x 4 runs");
    (w, n)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(files(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn quickstart_results_move_through_all_tiers_and_read_back_identically() {
    let (w, n) = stored_run();
    let before = show_json(&w);
    // The finished run gave its writer lease up: gc sees no writer, live or dead, and no orphan.
    let gc = json_of(&tier(&w, &["tier", "gc", "--json"], None));
    assert_eq!(gc["active_writers"], serde_json::json!([]), "{gc}");
    assert_eq!(gc["stale_leases"], 0, "{gc}");
    assert_eq!(gc["removed"], 0, "{gc}");
    for (days, want) in [(10, [0, n, 0]), (100, [0, 0, n])] {
        let out = tier(&w, &["tier", "migrate", "--as-of", &date_in(days)], None);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(
            out.stderr().contains("migrating to"),
            "progress line: {out:?}"
        );
        assert_eq!(per_tier(&w), want, "{days} days later");
        assert_eq!(
            show_json(&w),
            before,
            "records read back from the colder tier differ"
        );
        let (code, v) = verify(&w);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["checked"].as_u64(), Some(n));
        assert_eq!(v["orphans"].as_u64(), Some(0), "{v}");
    }
    // The source objects are gone: no warm packs remain, and `verify` found no orphan in
    // any tier (the hot tier lives in the catalog's database).
    let root = w.path().join(".benchfleet");
    assert!(files(&root.join("warm").join("warm")).is_empty());
    assert!(!files(&root.join("cold").join("cold")).is_empty());

    let status = tier(&w, &["tier", "status"], None);
    assert_eq!(status.code(), 0, "{status:?}");
    let cold_line = status
        .stdout()
        .lines()
        .find(|l| l.starts_with("cold"))
        .unwrap()
        .to_owned();
    assert!(cold_line.contains(&format!(" {n} ")), "{status:?}");
    // The catalog's own size and its overhead on the records' bytes.
    let catalog_line = status
        .stdout()
        .lines()
        .find(|l| l.starts_with("catalog "))
        .unwrap_or_else(|| panic!("no catalog line: {status:?}"))
        .to_owned();
    assert!(
        catalog_line.contains('%') && catalog_line.contains("redb:"),
        "{catalog_line}"
    );
    let j = json_of(&tier(&w, &["tier", "status", "--json"], None));
    let catalog = &j["catalog"];
    let bytes = catalog["bytes"].as_u64().unwrap();
    let raw: u64 = (0..3)
        .map(|i| j["tiers"][i]["bytes"].as_u64().unwrap())
        .sum();
    assert!(bytes > 0 && raw > 0, "{j}");
    let overhead = catalog["overhead"].as_f64().unwrap();
    assert!(
        (overhead - bytes as f64 / raw as f64).abs() < 1e-9,
        "{overhead} != {bytes} / {raw}"
    );
    assert!(catalog["file_bytes"].as_u64().unwrap() >= bytes, "{j}");
}

#[test]
fn killed_migrations_lose_nothing_and_rerunning_finishes() {
    let (pristine, n) = stored_run();
    let before = show_json(&pristine);
    // (days before a first, uninterrupted migration; days of the killed one; fault). On the
    // embedded default hot sources flip and go in one transaction (no journal); a batch out of
    // the warm tier still journals, hence the cases that first move everything to warm.
    let cases: &[(Option<i64>, i64, &str)] = &[
        (None, 10, "copy:1"),
        (None, 10, "copy:9"),
        (None, 10, "verify:1"),
        (None, 10, "verify:14"),
        (None, 10, "flip:1"),
        (None, 10, "flip:4"),
        (None, 10, "delete:1"),
        (None, 10, "delete:11"),
        (None, 10, "done:2"),
        (None, 100, "copy:2"),
        (None, 100, "verify:7"),
        (None, 100, "flip:2"),
        (None, 100, "delete:5"),
        (Some(10), 100, "journal:1"),
        (Some(10), 100, "flip:1"),
        (Some(10), 100, "done:1"),
    ];
    for &(first, days, fault) in cases {
        let w = Workdir::new();
        copy_dir(
            &pristine.path().join(".benchfleet"),
            &w.path().join(".benchfleet"),
        );
        if let Some(d) = first {
            let out = tier(&w, &["tier", "migrate", "--as-of", &date_in(d)], None);
            assert_eq!(out.code(), 0, "{out:?}");
        }
        let as_of = date_in(days);
        let killed = tier(&w, &["tier", "migrate", "--as-of", &as_of], Some(fault));
        assert_eq!(
            killed.code(),
            -1,
            "{fault}: expected death by signal: {killed:?}"
        );

        // After the kill: every record listed exactly once and intact.
        let (code, v) = verify(&w);
        assert_eq!(code, 0, "{fault}: {v}");
        assert_eq!(v["checked"].as_u64(), Some(n), "{fault}: {v}");
        assert_eq!(show_json(&w), before, "{fault}");

        // Rerunning finishes; gc leaves nothing unreferenced.
        let out = tier(&w, &["tier", "migrate", "--as-of", &as_of], None);
        assert_eq!(out.code(), 0, "{fault}: {out:?}");
        let want = if days == 10 { [0, n, 0] } else { [0, 0, n] };
        assert_eq!(per_tier(&w), want, "{fault}");
        let gc = tier(&w, &["tier", "gc"], None);
        assert_eq!(gc.code(), 0, "{fault}: {gc:?}");
        let (code, v) = verify(&w);
        assert_eq!(code, 0, "{fault}: {v}");
        assert_eq!(v["checked"].as_u64(), Some(n), "{fault}: {v}");
        assert_eq!(v["orphans"].as_u64(), Some(0), "{fault}: {v}");
        assert_eq!(v["pending_journals"].as_u64(), Some(0), "{fault}: {v}");
        assert_eq!(show_json(&w), before, "{fault}");
    }
}

#[test]
fn a_flipped_byte_is_reported_by_verify_with_the_record_id() {
    let (w, n) = stored_run();
    let out = tier(&w, &["tier", "migrate", "--as-of", &date_in(10)], None);
    assert_eq!(out.code(), 0, "{out:?}");
    // The warm tier holds packs of zstd frames, one frame per record.
    let warm = files(&w.path().join(".benchfleet/warm/warm"));
    assert!(!warm.is_empty() && warm.len() < n as usize, "{warm:?}");
    let victim = &warm[warm.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(victim, bytes).unwrap();

    let (code, v) = verify(&w);
    assert_eq!(code, 1, "{v}");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "one frame damaged: {v}");
    let p = &problems[0];
    assert_eq!(p["kind"], "corrupt", "{v}");
    // The record reported is the one whose frame holds the flipped byte.
    let location = p["location"].as_str().unwrap();
    let pack_name = victim.file_name().unwrap().to_str().unwrap();
    let span = location
        .split_once(&format!("{pack_name}@"))
        .unwrap_or_else(|| panic!("{location} is not a frame of {pack_name}"))
        .1
        .split('?')
        .next()
        .unwrap();
    let (offset, len) = span.split_once('+').unwrap();
    let (offset, len): (usize, usize) = (offset.parse().unwrap(), len.parse().unwrap());
    assert!(
        (offset..offset + len).contains(&i),
        "byte {i} is not in {span}"
    );
    // The human report names it by digest.
    let digest = p["digest"].as_str().unwrap();
    let out = tier(&w, &["tier", "verify"], None);
    assert_eq!(out.code(), 1, "{out:?}");
    let line = out
        .stdout()
        .lines()
        .find(|l| l.contains(digest))
        .unwrap_or_else(|| panic!("no line names {digest}: {out:?}"))
        .to_owned();
    assert!(line.starts_with("CORRUPT"), "{line}");

    // A missing pack is reported for every record in it, and only for those.
    std::fs::remove_file(victim).unwrap();
    let (code, v) = verify(&w);
    assert_eq!(code, 1);
    let problems = v["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{v}");
    for p in problems {
        assert_eq!(p["kind"], "missing", "{v}");
        assert!(p["location"].as_str().unwrap().contains(pack_name), "{v}");
    }
    let intact: u64 = v["intact"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(intact + problems.len() as u64, n, "{v}");
}
