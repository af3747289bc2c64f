//! Machine identity: every record and run carries a machine class; `compare` refuses two sides
//! measured on different classes unless `--allow-cross-machine`, and `history --changes` refuses
//! a series that mixes classes unless one is chosen (`--machine-class`) or the mix is allowed.

use crate::support::{Out, Workdir};

fn run_as(w: &Workdir, class: &str) -> String {
    let out = Out(w
        .cmd(&["run", "suite.toml", "--no-cache"])
        .env("BENCHFLEET_MACHINE_CLASS", class)
        .output()
        .expect("run"));
    assert_eq!(out.code(), 0, "{out:?}");
    let show = w.json(&["show", "latest", "--format", "json"]);
    assert_eq!(
        show["results"][0]["machine_classes"],
        serde_json::json!([class]),
        "records carry the class: {show}"
    );
    show["results"][0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned()
}

#[test]
fn comparisons_across_machine_classes_are_refused_unless_allowed() {
    let w = Workdir::new();
    w.file(
        "suite.toml",
        "[suite]\nname = \"m\"\n[[benchmark]]\nname = \"t\"\ncommand = \"true\"\nruns = 3\nwarmup = 0\n",
    );
    let a1 = run_as(&w, "mc-aaaaaaaaaaaa");
    let a2 = run_as(&w, "mc-aaaaaaaaaaaa");
    let b1 = run_as(&w, "mc-bbbbbbbbbbbb");

    let same = w.run(&["compare", &a1, &a2]);
    assert_eq!(same.code(), 0, "{same:?}");
    let cross = w.run(&["compare", &a1, &b1]);
    assert_eq!(cross.code(), 2, "{cross:?}");
    assert!(
        cross.stderr().contains("mc-aaaaaaaaaaaa")
            && cross.stderr().contains("mc-bbbbbbbbbbbb")
            && cross.stderr().contains("--allow-cross-machine"),
        "{cross:?}"
    );
    let allowed = w.run(&[
        "compare",
        &a1,
        &b1,
        "--allow-cross-machine",
        "--format",
        "json",
    ]);
    assert_eq!(allowed.code(), 0, "{allowed:?}");
    assert!(allowed.stderr().contains("across machines"), "{allowed:?}");
    let j: serde_json::Value = serde_json::from_str(&allowed.stdout()).expect("json");
    assert_eq!(
        j["cross_machine"]["candidate"],
        serde_json::json!(["mc-bbbbbbbbbbbb"])
    );

    let mixed = w.run(&["history", "--benchmark", "t", "--changes"]);
    assert_eq!(mixed.code(), 2, "{mixed:?}");
    assert!(
        mixed.stderr().contains("mixes machine classes")
            && mixed.stderr().contains("mc-aaaaaaaaaaaa (2 runs)"),
        "{mixed:?}"
    );
    let one = w.json(&[
        "history",
        "--benchmark",
        "t",
        "--changes",
        "--machine-class",
        "mc-aaaaaaaaaaaa",
        "--format",
        "json",
    ]);
    let points = one["points"].as_array().expect("points");
    assert_eq!(points.len(), 2, "{one}");
    assert!(
        points
            .iter()
            .all(|p| p["machine_class"] == "mc-aaaaaaaaaaaa")
    );
    let all = w.run(&[
        "history",
        "--benchmark",
        "t",
        "--changes",
        "--allow-cross-machine",
    ]);
    assert_eq!(all.code(), 0, "{all:?}");
    assert!(all.stderr().contains("several machine classes"), "{all:?}");
}
