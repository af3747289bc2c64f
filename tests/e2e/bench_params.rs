//! `bench` parameters substitute in one pass, like hyperfine (issue 15): a value that looks like
//! another placeholder is run as written, never substituted again.

use crate::support::Workdir;

#[test]
fn a_parameter_value_is_never_substituted_again() {
    let w = Workdir::new();
    let out = w.run(&[
        "bench",
        "--no-sample",
        "-r",
        "1",
        "-L",
        "a",
        "{b}",
        "-L",
        "b",
        "x",
        "--export-json",
        "o.json",
        "sh -c 'echo {a} >> log'",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let log = std::fs::read_to_string(w.path().join("log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["{b}"], "{out:?}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("o.json")).unwrap()).unwrap();
    // `b` is not in the command line: hyperfine shows it in the name, JSON's `command`.
    assert_eq!(
        json["results"][0]["command"], "sh -c 'echo {b} >> log' (b = x)",
        "{json}"
    );
    assert_eq!(
        json["results"][0]["command_line"], "sh -c 'echo {b} >> log'",
        "{json}"
    );
}
