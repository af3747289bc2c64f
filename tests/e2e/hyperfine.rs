//! hyperfine 1.20's own tests, ported as data (issue 18): the cases of its
//! `tests/execution_order_tests.rs` and `tests/integration_tests.rs`, with the same arguments and
//! the same expected outcome (success or failure, the order of the executed commands in a log
//! file, output shown or not). hyperfine is not needed to run them.
//!
//! A benchfleet deliberate difference is restored by a flag where a case needs it: the execution
//! order cases pass `--order sequential` (hyperfine's order), and also run in benchfleet's default
//! order, where they must execute the same commands, a setup or cleanup still with its own runs.
//! Where a case depends on hyperfine's `--debug-mode` fake timings, the timing-independent part is
//! asserted (names, units, which benchmark is the reference), never a time.

use crate::support::{Out, Workdir};

/// An argument; `@text` is hyperfine's logging command `echo text >> log` (shell syntax, so
/// benchfleet runs it through `sh`, as hyperfine does).
fn arg(a: &str) -> String {
    match a.strip_prefix('@') {
        Some(text) => format!("echo {text} >> log"),
        None => a.to_owned(),
    }
}

fn bench(w: &Workdir, extra: &[&str], args: &[&str]) -> Out {
    let mut all: Vec<String> = ["bench", "--no-sample"].map(String::from).to_vec();
    all.extend(extra.iter().map(|a| a.to_string()));
    all.extend(args.iter().map(|a| arg(a)));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    w.run(&all)
}

fn log(w: &Workdir) -> Vec<String> {
    std::fs::read_to_string(w.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `parts` one after the other, each `(lines, times)` repeated.
fn seq(parts: &[(&[&str], usize)]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|(lines, n)| std::iter::repeat_n(*lines, *n).flatten())
        .map(|s| s.to_string())
        .collect()
}

/// hyperfine's execution-order cases: name, arguments, the log hyperfine writes.
fn execution_order_cases() -> Vec<(&'static str, Vec<&'static str>, Vec<String>)> {
    let (c1, c2) = ("command 1", "command 2");
    let combined = |hooks: [&'static str; 4], cmds: &[&'static str]| -> Vec<String> {
        // setup, (prepare, command, conclude) × (1 warmup + 2 runs), cleanup: per command.
        let [setup, cleanup, prepare, conclude] = hooks;
        cmds.iter()
            .flat_map(|c| {
                let mut v = vec![setup.to_string()];
                for _ in 0..3 {
                    v.extend(
                        [prepare, c, conclude]
                            .into_iter()
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                    );
                }
                v.push(cleanup.to_string());
                v
            })
            .collect()
    };
    vec![
        (
            "benchmarks_are_executed_sequentially_one",
            vec!["--runs=1", "@command 1", "@command 2"],
            seq(&[(&[c1], 1), (&[c2], 1)]),
        ),
        (
            "benchmarks_are_executed_sequentially",
            vec!["--runs=2", "@command 1", "@command 2"],
            seq(&[(&[c1], 2), (&[c2], 2)]),
        ),
        (
            "warmup_runs_are_executed_before_benchmarking_runs",
            vec!["--runs=2", "--warmup=3", "@command 1"],
            seq(&[(&[c1], 5)]),
        ),
        (
            "setup_commands_are_executed_before_each_series_of_timing_runs",
            vec!["--runs=2", "--setup", "@setup", "@command 1", "@command 2"],
            seq(&[(&["setup"], 1), (&[c1], 2), (&["setup"], 1), (&[c2], 2)]),
        ),
        (
            "prepare_commands_are_executed_before_each_timing_run",
            vec![
                "--runs=2",
                "--prepare",
                "@prepare",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&["prepare", c1], 2), (&["prepare", c2], 2)]),
        ),
        (
            "conclude_commands_are_executed_after_each_timing_run",
            vec![
                "--runs=2",
                "--conclude",
                "@conclude",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&[c1, "conclude"], 2), (&[c2, "conclude"], 2)]),
        ),
        (
            "prepare_commands_are_executed_before_each_warmup",
            vec![
                "--warmup=2",
                "--runs=1",
                "--prepare",
                "@prepare",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&["prepare", c1], 3), (&["prepare", c2], 3)]),
        ),
        (
            "conclude_commands_are_executed_after_each_warmup",
            vec![
                "--warmup=2",
                "--runs=1",
                "--conclude",
                "@conclude",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&[c1, "conclude"], 3), (&[c2, "conclude"], 3)]),
        ),
        (
            "cleanup_commands_are_executed_once_after_each_benchmark",
            vec![
                "--runs=2",
                "--cleanup",
                "@cleanup",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&[c1], 2), (&["cleanup"], 1), (&[c2], 2), (&["cleanup"], 1)]),
        ),
        (
            "setup_prepare_cleanup_combined",
            vec![
                "--warmup=1",
                "--runs=2",
                "--setup",
                "@setup",
                "--prepare",
                "@prepare",
                "@command1",
                "@command2",
                "--cleanup",
                "@cleanup",
            ],
            combined(
                ["setup", "cleanup", "prepare", ""],
                &["command1", "command2"],
            ),
        ),
        (
            "setup_prepare_conclude_cleanup_combined",
            vec![
                "--warmup=1",
                "--runs=2",
                "--setup",
                "@setup",
                "--prepare",
                "@prepare",
                "@command1",
                "@command2",
                "--conclude",
                "@conclude",
                "--cleanup",
                "@cleanup",
            ],
            combined(
                ["setup", "cleanup", "prepare", "conclude"],
                &["command1", "command2"],
            ),
        ),
        (
            "single_parameter_value",
            vec![
                "--runs=2",
                "--parameter-list",
                "number",
                "1,2,3",
                "@command {number}",
            ],
            seq(&[
                (&["command 1"], 2),
                (&["command 2"], 2),
                (&["command 3"], 2),
            ]),
        ),
        (
            "multiple_parameter_values",
            vec![
                "--runs=2",
                "--parameter-list",
                "number",
                "1,2,3",
                "--parameter-list",
                "letter",
                "a,b",
                "@command {number} {letter}",
            ],
            seq(&[
                (&["command 1 a"], 2),
                (&["command 2 a"], 2),
                (&["command 3 a"], 2),
                (&["command 1 b"], 2),
                (&["command 2 b"], 2),
                (&["command 3 b"], 2),
            ]),
        ),
        (
            "reference_is_executed_first",
            vec![
                "--runs=1",
                "--reference",
                "@reference",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&["reference", c1, c2], 1)]),
        ),
        (
            "reference_is_executed_first_parameter_value",
            vec![
                "--runs=2",
                "--reference",
                "@reference",
                "--parameter-list",
                "number",
                "1,2,3",
                "@command {number}",
            ],
            seq(&[
                (&["reference"], 2),
                (&["command 1"], 2),
                (&["command 2"], 2),
                (&["command 3"], 2),
            ]),
        ),
        (
            "reference_is_executed_separately_from_commands",
            vec![
                "--runs=1",
                "--reference",
                "@command 1",
                "@command 1",
                "@command 2",
            ],
            seq(&[(&[c1, c1, c2], 1)]),
        ),
        (
            "setup_prepare_reference_conclude_cleanup_combined",
            vec![
                "--warmup=1",
                "--runs=2",
                "--setup",
                "@setup",
                "--prepare",
                "@prepare",
                "--reference",
                "@reference",
                "@command1",
                "@command2",
                "--conclude",
                "@conclude",
                "--cleanup",
                "@cleanup",
            ],
            combined(
                ["setup", "cleanup", "prepare", "conclude"],
                &["reference", "command1", "command2"],
            ),
        ),
        (
            "setup_separate_prepare_separate_conclude_cleanup_combined",
            vec![
                "--warmup=1",
                "--runs=2",
                "--setup",
                "@setup",
                "--cleanup",
                "@cleanup",
                "--prepare",
                "@prepare1",
                "@command1",
                "--conclude",
                "@conclude1",
                "--prepare",
                "@prepare2",
                "@command2",
                "--conclude",
                "@conclude2",
            ],
            [
                combined(["setup", "cleanup", "prepare1", "conclude1"], &["command1"]),
                combined(["setup", "cleanup", "prepare2", "conclude2"], &["command2"]),
            ]
            .concat(),
        ),
        (
            "setup_separate_prepare_reference_separate_conclude_cleanup_combined",
            vec![
                "--warmup=1",
                "--runs=2",
                "--setup",
                "@setup",
                "--cleanup",
                "@cleanup",
                "--prepare",
                "@prepareref",
                "--reference",
                "@reference",
                "--conclude",
                "@concluderef",
                "--prepare",
                "@prepare1",
                "@command1",
                "--conclude",
                "@conclude1",
                "--prepare",
                "@prepare2",
                "@command2",
                "--conclude",
                "@conclude2",
            ],
            [
                combined(
                    ["setup", "cleanup", "prepareref", "concluderef"],
                    &["reference"],
                ),
                combined(["setup", "cleanup", "prepare1", "conclude1"], &["command1"]),
                combined(["setup", "cleanup", "prepare2", "conclude2"], &["command2"]),
            ]
            .concat(),
        ),
    ]
}

#[test]
fn execution_order_is_hyperfines_with_order_sequential() {
    for (name, args, want) in execution_order_cases() {
        let w = Workdir::new();
        let out = bench(&w, &["--order", "sequential"], &args);
        assert_eq!(out.code(), 0, "{name}: {out:?}");
        assert_eq!(log(&w), want, "{name}: {out:?}");
    }
}

/// benchfleet's default order runs the same commands as often; a setup or cleanup (hyperfine's
/// order then) and a single benchmark run exactly as in hyperfine.
#[test]
fn the_default_order_runs_the_same_commands_and_keeps_setups_with_their_runs() {
    for (name, args, want) in execution_order_cases() {
        let w = Workdir::new();
        let out = bench(&w, &[], &args);
        assert_eq!(out.code(), 0, "{name}: {out:?}");
        let got = log(&w);
        let hooked = args.iter().any(|a| *a == "--setup" || *a == "--cleanup");
        if hooked {
            assert!(out.stderr().contains("(sequential"), "{name}: {out:?}");
            assert_eq!(got, want, "{name}: {out:?}");
        } else {
            let (mut a, mut b) = (got, want);
            a.sort();
            b.sort();
            assert_eq!(a, b, "{name}: the same commands, as often: {out:?}");
        }
    }
}

/// What a case of `integration_tests.rs` expects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exit 0.
    Success,
    /// A command failed: exit 1.
    Fails,
    /// Bad input: exit 2 (hyperfine exits 1 for both).
    Refused,
}

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    expect: Expect,
    /// Text stdout must contain, and how often (`None`: at least once).
    stdout: &'static [(&'static str, Option<usize>)],
    stderr: &'static [&'static str],
}

const NO: &[(&str, Option<usize>)] = &[];

const INTEGRATION: &[Case] = &[
    Case {
        name: "runs_successfully",
        args: &["--runs=2", "echo dummy benchmark"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "one_run_is_supported",
        args: &["--runs=1", "echo dummy benchmark"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "can_run_commands_without_a_shell",
        args: &[
            "--runs=1",
            "--show-output",
            "--shell=none",
            "echo 'hello world' argument2",
        ],
        expect: Expect::Success,
        stdout: &[("hello world argument2", Some(1))],
        stderr: &[],
    },
    Case {
        name: "fails_with_wrong_number_of_command_name_arguments",
        args: &["--command-name=a", "--command-name=b", "echo a"],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["-n/--command-name is given 2 times for 1 commands"],
    },
    Case {
        name: "prepare_once_per_command",
        args: &[
            "--runs=1",
            "--prepare=echo a",
            "--prepare=echo b",
            "echo a",
            "echo b",
        ],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "prepare_once_per_command_and_reference",
        args: &[
            "--runs=1",
            "--prepare=echo ref",
            "--prepare=echo a",
            "--prepare=echo b",
            "--reference=echo ref",
            "echo a",
            "echo b",
        ],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "prepare_too_few",
        args: &[
            "--runs=1",
            "--prepare=echo a",
            "--prepare=echo b",
            "echo a",
            "echo b",
            "echo c",
        ],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["-p/--prepare is given 2 times for 3 benchmarks"],
    },
    Case {
        name: "prepare_missing_the_reference",
        args: &[
            "--runs=1",
            "--prepare=echo a",
            "--prepare=echo b",
            "--reference=echo ref",
            "echo a",
            "echo b",
        ],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["-p/--prepare is given 2 times for 3 benchmarks, the --reference included"],
    },
    Case {
        name: "conclude_once_per_command",
        args: &[
            "--runs=1",
            "--conclude=echo a",
            "--conclude=echo b",
            "echo a",
            "echo b",
        ],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "conclude_once_per_command_and_reference",
        args: &[
            "--runs=1",
            "--conclude=echo ref",
            "--conclude=echo a",
            "--conclude=echo b",
            "--reference=echo ref",
            "echo a",
            "echo b",
        ],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "conclude_too_few",
        args: &[
            "--runs=1",
            "--conclude=echo a",
            "--conclude=echo b",
            "echo a",
            "echo b",
            "echo c",
        ],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["-C/--conclude is given 2 times for 3 benchmarks"],
    },
    Case {
        name: "conclude_missing_the_reference",
        args: &[
            "--runs=1",
            "--conclude=echo a",
            "--conclude=echo b",
            "--reference=echo ref",
            "echo a",
            "echo b",
        ],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["-C/--conclude is given 2 times for 3 benchmarks, the --reference included"],
    },
    Case {
        name: "fails_with_duplicate_parameter_names",
        args: &[
            "--parameter-list",
            "x",
            "1,2,3",
            "--parameter-list",
            "x",
            "a,b,c",
            "echo test",
        ],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["parameter `x` is given twice"],
    },
    Case {
        name: "fails_for_unknown_command",
        args: &[
            "--runs=1",
            "some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577",
        ],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577"],
    },
    Case {
        name: "fails_for_unknown_command_without_shell",
        args: &[
            "--shell=none",
            "--runs=1",
            "some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577",
        ],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["command not found"],
    },
    Case {
        name: "fails_for_failing_command_without_shell",
        args: &["--shell=none", "--runs=1", "false"],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["run exit 1"],
    },
    Case {
        name: "fails_for_unknown_setup_command",
        args: &[
            "--runs=1",
            "--setup=some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577",
            "echo test",
        ],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["setup command `some-nonexisting-program"],
    },
    Case {
        name: "fails_for_unknown_cleanup_command",
        args: &[
            "--runs=1",
            "--cleanup=some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577",
            "echo test",
        ],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["cleanup command `some-nonexisting-program"],
    },
    Case {
        name: "fails_for_unknown_prepare_command",
        args: &[
            "--prepare=some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577",
            "echo test",
        ],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["prepare command `some-nonexisting-program"],
    },
    Case {
        name: "fails_for_unknown_conclude_command",
        args: &[
            "--conclude=some-nonexisting-program-b5d9574198b7e4b12a71fa4747c0a577",
            "echo test",
        ],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["conclude command `some-nonexisting-program"],
    },
    Case {
        name: "a_failing_command_fails",
        args: &["false"],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["run exit 1; use -i/--ignore-failure"],
    },
    Case {
        name: "can_run_failing_commands_with_ignore_failure_option",
        args: &["--runs=1", "--ignore-failure", "false"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "can_ignore_specific_exit_codes",
        args: &["--runs=1", "--ignore-failure=1", "exit 1"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "other_exit_codes_still_fail",
        args: &["--runs=1", "--ignore-failure=1", "exit 2"],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["run exit 2; not an exit code -i/--ignore-failure=1 ignores"],
    },
    Case {
        name: "can_ignore_multiple_exit_codes_1",
        args: &["--runs=1", "--ignore-failure=1,2,3", "exit 1"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "can_ignore_multiple_exit_codes_2",
        args: &["--runs=1", "--ignore-failure=1,2,3", "exit 2"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "can_ignore_multiple_exit_codes_3",
        args: &["--runs=1", "--ignore-failure=1,2,3", "exit 3"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "can_ignore_multiple_exit_codes_but_not_4",
        args: &["--runs=1", "--ignore-failure=1,2,3", "exit 4"],
        expect: Expect::Fails,
        stdout: NO,
        stderr: &["run exit 4"],
    },
    Case {
        name: "ignore_failure_with_all_non_zero",
        args: &["--runs=1", "--ignore-failure=all-non-zero", "exit 5"],
        expect: Expect::Success,
        stdout: NO,
        stderr: &[],
    },
    Case {
        name: "shows_output_of_benchmarked_command",
        args: &[
            "--runs=2",
            "--command-name=dummy",
            "--show-output",
            "echo 4fd47015",
        ],
        expect: Expect::Success,
        stdout: &[("4fd47015", Some(2))],
        stderr: &[],
    },
    Case {
        name: "runs_commands_using_user_defined_shell",
        args: &[
            "--runs=1",
            "--show-output",
            "--shell",
            "echo 'custom_shell' '--shell-arg'",
            "echo benchmark",
        ],
        expect: Expect::Success,
        stdout: &[("custom_shell --shell-arg -c echo benchmark", Some(1))],
        stderr: &[],
    },
    Case {
        name: "can_pass_input_to_command_from_a_file",
        args: &[
            "--runs=1",
            "--input=example_input_file.txt",
            "--show-output",
            "cat",
        ],
        expect: Expect::Success,
        stdout: &[("This text is part of a file", Some(1))],
        stderr: &[],
    },
    Case {
        name: "fails_if_invalid_stdin_data_file_provided",
        args: &[
            "--runs=1",
            "--input=example_non_existent_file.txt",
            "--show-output",
            "cat",
        ],
        expect: Expect::Refused,
        stdout: NO,
        stderr: &["--input \"example_non_existent_file.txt\": no such file"],
    },
    // returns_mean_time_in_correct_unit (fake timings): the unit asked for is the unit shown.
    Case {
        name: "returns_mean_time_in_millisecond",
        args: &["--runs=2", "--time-unit=millisecond", "-N", "sleep 0.001"],
        expect: Expect::Success,
        stdout: &[(" ms ± ", Some(1))],
        stderr: &[],
    },
    Case {
        name: "returns_mean_time_in_microsecond",
        args: &["--runs=2", "--time-unit=microsecond", "-N", "sleep 0.001"],
        expect: Expect::Success,
        stdout: &[(" µs ± ", Some(1))],
        stderr: &[],
    },
    Case {
        name: "returns_mean_time_in_second",
        args: &["--runs=2", "-u", "second", "-N", "sleep 0.001"],
        expect: Expect::Success,
        stdout: &[(" s ± ", Some(1))],
        stderr: &[],
    },
    // shows_benchmark_comparison_relative_to_reference (fake timings): the reference leads the
    // summary whatever the times.
    Case {
        name: "shows_benchmark_comparison_relative_to_reference",
        args: &[
            "--runs=2",
            "--reference=sleep 0.002",
            "sleep 0.001",
            "sleep 0.003",
        ],
        expect: Expect::Success,
        stdout: &[("Summary\n  sleep 0.002 ran\n", Some(1))],
        stderr: &[],
    },
    Case {
        name: "shows_reference_name",
        args: &[
            "--runs=2",
            "--reference=sleep 0.002",
            "--reference-name=refabc123",
            "sleep 0.001",
            "sleep 0.003",
        ],
        expect: Expect::Success,
        stdout: &[("  refabc123 ran\n", Some(1))],
        stderr: &[],
    },
    // performs_all_benchmarks_in_parameter_scan (fake `sleep 30` …): the same scan, echoed.
    Case {
        name: "performs_all_benchmarks_in_parameter_scan",
        args: &[
            "--runs=1",
            "--parameter-scan",
            "time",
            "30",
            "45",
            "--parameter-step-size",
            "5",
            "--export-json",
            "-",
            "--style=none",
            "echo {time}",
        ],
        expect: Expect::Success,
        stdout: &[
            ("\"command\": \"echo 30\"", Some(1)),
            ("\"command\": \"echo 35\"", Some(1)),
            ("\"command\": \"echo 40\"", Some(1)),
            ("\"command\": \"echo 45\"", Some(1)),
            ("\"command\": \"echo 50\"", Some(0)),
        ],
        stderr: &[],
    },
    Case {
        name: "performs_reference_and_all_benchmarks_in_parameter_scan",
        args: &[
            "--runs=1",
            "--reference=echo 25",
            "--parameter-scan",
            "time",
            "30",
            "45",
            "--parameter-step-size",
            "5",
            "--export-csv",
            "-",
            "--style=none",
            "echo {time}",
        ],
        expect: Expect::Success,
        stdout: &[
            ("\necho 25,", Some(1)),
            ("\necho 30,", Some(1)),
            ("\necho 45,", Some(1)),
            ("\necho 50,", Some(0)),
        ],
        stderr: &[],
    },
    Case {
        name: "intermediate_results_are_not_exported_to_stdout",
        args: &[
            "--runs=1",
            "--style=none",
            "--export-markdown",
            "-",
            "sleep 0.001",
            "sleep 0.002",
        ],
        expect: Expect::Success,
        stdout: &[("sleep 0.001", Some(1)), ("sleep 0.002", Some(1))],
        stderr: &[],
    },
    Case {
        name: "unused_parameters_are_shown_in_benchmark_name",
        args: &[
            "--runs=2",
            "--parameter-list",
            "branch",
            "master,feature",
            "echo test",
        ],
        expect: Expect::Success,
        stdout: &[
            ("echo test (branch = master)", None),
            ("echo test (branch = feature)", None),
        ],
        stderr: &[],
    },
    // speed_comparison_sort_order (fake timings): the layout of each sort order.
    Case {
        name: "speed_comparison_sort_order_mean_time",
        args: &[
            "--runs=2",
            "--sort=mean-time",
            "-N",
            "sleep 0.002",
            "sleep 0.001",
        ],
        expect: Expect::Success,
        stdout: &[("Summary\n", Some(1)), (" times ", Some(1))],
        stderr: &[],
    },
    Case {
        name: "speed_comparison_sort_order_command",
        args: &[
            "--runs=2",
            "--sort=command",
            "-N",
            "sleep 0.002",
            "sleep 0.001",
        ],
        expect: Expect::Success,
        stdout: &[
            ("Relative speed comparison\n", Some(1)),
            ("  sleep 0.00", Some(2)),
        ],
        stderr: &[],
    },
];

#[test]
fn hyperfines_integration_cases_have_hyperfines_outcome() {
    for case in INTEGRATION {
        let w = Workdir::new();
        w.file("example_input_file.txt", "This text is part of a file\n");
        let out = bench(&w, &[], case.args);
        let code = match case.expect {
            Expect::Success => 0,
            Expect::Fails => 1,
            Expect::Refused => 2,
        };
        assert_eq!(out.code(), code, "{}: {out:?}", case.name);
        for (text, count) in case.stdout {
            let n = out.stdout().matches(text).count();
            match count {
                Some(c) => assert_eq!(n, *c, "{}: {text:?} in stdout: {out:?}", case.name),
                None => assert!(n > 0, "{}: {text:?} in stdout: {out:?}", case.name),
            }
        }
        for text in case.stderr {
            assert!(
                out.stderr().contains(text),
                "{}: {text:?} in stderr: {out:?}",
                case.name
            );
        }
    }
}

/// exports_intermediate_results_to_file: a failed benchmark still exports what was measured.
#[test]
fn results_are_exported_when_a_benchmark_fails() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[],
        &[
            "--runs=1",
            "--export-markdown",
            "results.md",
            "true",
            "false",
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    let md = std::fs::read_to_string(w.path().join("results.md")).unwrap();
    assert!(md.contains("`true`"), "{md}");
}

/// The "wrong results with no error" of issue 18, each now hyperfine's result.
#[test]
fn hyperfines_results_where_benchfleet_was_silently_different() {
    let logged = |args: &[&str]| {
        let w = Workdir::new();
        let out = bench(&w, &["--runs=1"], args);
        assert_eq!(out.code(), 0, "{args:?}: {out:?}");
        (log(&w), out)
    };
    // Escaped commas.
    let (got, _) = logged(&["-L", "a", r"x\,y,z", "@{a}"]);
    assert_eq!(got, ["x,y", "z"]);
    // Decimal -P values.
    let (got, _) = logged(&["-P", "d", "0", "0.3", "-D", "0.1", "@{d}"]);
    assert_eq!(got, ["0", "0.1", "0.2", "0.3"]);
    let (got, _) = logged(&["-P", "d", "1", "2", "-D", "0.5", "@{d}"]);
    assert_eq!(got, ["1", "1.5", "2.0"]);
    // Shell syntax is never passed as literal arguments.
    let (got, out) = logged(&["echo a >> log && echo b >> log"]);
    assert_eq!(got, ["a", "b"]);
    assert!(
        out.stderr()
            .contains("uses shell syntax (a redirection (`>`)): run through `sh -c`"),
        "{out:?}"
    );
    let w = Workdir::new();
    let out = bench(&w, &["-N"], &["echo a && echo b"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("-S sh"), "{out:?}");
    // Per-parameter setup: each build right before its own runs.
    let (got, _) = logged(&["-L", "v", "a,b", "--setup", "@build {v}", "@run {v}"]);
    assert_eq!(got, ["build a", "run a", "build b", "run b"]);
}

#[test]
fn every_run_has_hyperfines_iteration_variable_and_benchfleets() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[],
        &[
            "-w",
            "1",
            "-r",
            "2",
            "echo $HYPERFINE_ITERATION $BENCHFLEET_ITERATION >> log",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(log(&w), ["warmup-0 warmup-0", "0 0", "1 1"]);
}

#[test]
fn output_goes_to_a_file_per_benchmark_and_exports_to_stdout() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[],
        &[
            "--runs=2",
            "--output=./a.txt",
            "--output=null",
            "--export-json",
            "-",
            "--style=none",
            "-n",
            "A",
            "echo from-a",
            "echo from-b",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(w.path().join("a.txt")).unwrap(),
        "from-a\n"
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout()).expect("JSON on stdout");
    assert_eq!(json["results"][0]["command"], "A", "hyperfine: -n's name");
    assert_eq!(json["results"][0]["command_line"], "echo from-a");
    assert_eq!(json["results"][1]["command"], "echo from-b");
}

#[test]
fn asciidoc_and_orgmode_exports_are_written() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[],
        &[
            "--runs=2",
            "--export-asciidoc",
            "t.adoc",
            "--export-orgmode",
            "-",
            "--style=none",
            "-N",
            "true",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().contains("| =true=  |"), "{out:?}");
    let adoc = std::fs::read_to_string(w.path().join("t.adoc")).unwrap();
    assert!(adoc.starts_with("[cols=\"<,>,>,>,>\"]\n|==="), "{adoc}");
    assert!(adoc.contains("\n| `true` \n"), "{adoc}");
}
