use std::path::Path;

use super::*;

/// Parsed table by table, a file gives what the TOML parser gives for the whole of it.
fn same_as_whole(text: &str) -> SuiteFile {
    let path = Path::new("suite.toml");
    let whole: SuiteFile = toml::from_str(text).expect("valid suite");
    let cut = parse(path, text)
        .and_then(Tables::into_file)
        .expect("valid suite");
    assert_eq!(cut, whole, "{text}");
    cut
}

/// The error's line as the whole-file parse reports it, and as the cut parse does.
fn error_lines(text: &str) -> (usize, usize) {
    let path = Path::new("suite.toml");
    let whole = toml::from_str::<SuiteFile>(text).unwrap_err();
    let whole = crate::suite::suite_parse_error(path, text, whole, 0);
    let cut = parse(path, text).and_then(Tables::into_file).unwrap_err();
    let line = |e: &Error| match e {
        Error::Suite { line, .. } => *line,
        other => panic!("not a suite error: {other:?}"),
    };
    (line(&whole), line(&cut))
}

const PLAIN: &str = r#"
# a comment with [[job]] in it
[suite]
name = "s"

[defaults]
runs = 3
[defaults.env]
A = "1"

[[job]]
name = "build"
command = ["make", "-j", "2"]
[job.env]
CC = "clang"

  [[benchmark]]
  name = "grep"
  command = "rg x"
  needs = [
    "build",
  ]
  matrix = { n = [1, 2] }

[[job]]
name = "gen"
command = """
echo [[job]]
[suite]
"""
shell = "sh"
inputs = ['[[benchmark]]']
"#;

#[test]
fn node_tables_are_parsed_one_by_one_with_the_same_result() {
    let file = same_as_whole(PLAIN);
    assert_eq!(file.job.len(), 2);
    assert_eq!(file.benchmark.len(), 1);
    let parts = cut(PLAIN).expect("cut");
    let kinds: Vec<Table> = parts.nodes.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [Table::Job, Table::Benchmark, Table::Job]);
    // The multi-line string's `[[job]]` and `[suite]` lines stay inside the last node table.
    assert!(PLAIN[parts.nodes[2].start..parts.nodes[2].end].contains("echo [[job]]"));
    assert!(!parts.rest.contains("name = \"build\""), "{}", parts.rest);
    assert_eq!(parts.rest.lines().count(), PLAIN.lines().count());
}

#[test]
fn a_node_table_ends_where_the_next_other_table_starts() {
    let text = "[[job]]\nname = \"a\"\ncommand = \"true\"\n[suite]\nname = \"s\"\n[[job]]\nname = \"b\"\ncommand = \"true\"\n";
    let file = same_as_whole(text);
    assert_eq!(file.suite.name, "s");
    assert_eq!(file.job.len(), 2);
    let parts = cut(text).unwrap();
    assert!(parts.rest.contains("[suite]"));
}

#[test]
fn crlf_line_ends_and_a_file_without_a_final_newline() {
    same_as_whole(
        "[suite]\r\nname = \"s\"\r\n[[job]]\r\nname = \"a\"\r\ncommand = \"true\"\r\n[[job]]\r\nname = \"b\"\r\ncommand = \"true\"",
    );
}

#[test]
fn files_not_cut_with_certainty_are_parsed_whole() {
    // Nodes as an inline array of tables.
    same_as_whole("job = [{ name = \"a\", command = \"true\" }]\n[suite]\nname = \"s\"\n");
    // A quoted table name.
    same_as_whole("[suite]\nname = \"s\"\n[[\"job\"]]\nname = \"a\"\ncommand = \"true\"\n");
    assert!(cut("[[\"job\"]]\nname = \"a\"\n").is_none());
    // A sub-table of a node table written before any node.
    assert!(cut("[job.env]\nA = \"1\"\n").is_none());
}

#[test]
fn errors_in_a_node_table_name_the_line_of_the_file() {
    let text = "[suite]\nname = \"s\"\n\n[[job]]\nname = \"a\"\ncommand = \"true\"\n\n[[job]]\nname = \"b\"\ncommand = \"true\"\nrunz = 3\n";
    assert_eq!(error_lines(text), (11, 11));
    let bad_value = "[suite]\nname = \"s\"\n[[job]]\nname = \"a\"\ncommand = \"\"\"\nx\ny\n\"\"\"\n[[benchmark]]\nname = 5\n";
    let (whole, cut) = error_lines(bad_value);
    assert_eq!(whole, cut);
    assert_eq!(cut, 10);
}

#[test]
fn errors_outside_node_tables_name_the_line_of_the_file() {
    let text = "[[job]]\nname = \"a\"\ncommand = \"true\"\n[suite]\nname = \"s\"\nfoo = 1\n";
    assert_eq!(error_lines(text), (6, 6));
    // A key defined twice at the top: TOML's own message, at its line.
    let twice =
        "[suite]\nname = \"s\"\n[[job]]\nname = \"a\"\ncommand = \"true\"\n[suite]\nname = \"t\"\n";
    let (whole, cut) = error_lines(twice);
    assert_eq!(whole, cut);
}
