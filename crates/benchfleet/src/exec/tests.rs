use benchfleet_metrics::{Kill, ProcessSpec};
use benchfleet_model::Measurement;

use super::mock::{Mock, Scripted};
use super::*;

fn hook(what: &str, cmd: &str) -> Option<Hook> {
    Some(Hook {
        what: what.into(),
        spec: ProcessSpec::shell("sh", cmd),
    })
}

fn invocation() -> Invocation {
    Invocation {
        setup: hook("`setup` command", "setup"),
        prepare: hook("`prepare` command", "prepare"),
        conclude: hook("`conclude` command", "conclude"),
        cleanup: hook("`cleanup` command", "cleanup"),
        ..Invocation::new(ProcessSpec::shell("sh", "main"))
    }
}

/// Runs `inv` like a driver: setup, `runs` times once, cleanup; the phases seen.
fn drive(inv: &Invocation, ex: &Mock, kill: &Kill, runs: usize) -> Vec<Result<Once, String>> {
    let overlap = Overlap::default();
    let mut out = Vec::new();
    inv.run_setup(ex, kill).unwrap();
    for _ in 0..runs {
        out.push(inv.once(ex, &inv.spec, None, kill, &overlap, &mut |_| {}));
    }
    inv.run_cleanup(ex, kill).unwrap();
    out
}

#[test]
fn hooks_run_in_order_around_every_measured_run() {
    let ex = Mock::ok(1_000);
    let runs = drive(&invocation(), &ex, &Kill::new(), 2);
    assert!(runs.iter().all(|r| r.as_ref().unwrap().concluded.is_ok()));
    assert_eq!(
        ex.log(),
        [
            "setup", "prepare", "main", "conclude", "prepare", "main", "conclude", "cleanup"
        ]
    );
}

#[test]
fn phases_bracket_the_measured_process_and_count_what_runs() {
    let ex = Mock::ok(1_000);
    let inv = Invocation::new(ProcessSpec::new("main", Vec::<String>::new()));
    let overlap = Overlap::default();
    let mut phases = Vec::new();
    let once = inv
        .once(&ex, &inv.spec, None, &Kill::new(), &overlap, &mut |p| {
            phases.push(p)
        })
        .unwrap();
    assert_eq!(
        phases,
        [Phase::Started { running: 1 }, Phase::Finished { ok: true }]
    );
    assert!(!once.concurrent);
}

#[test]
fn failures_are_described_with_the_hook_and_the_end_of_stderr() {
    for (what, stderr, want) in [
        (
            "`prepare` command",
            "a\nb\nc\nd\n",
            "`prepare` command exit 3: b | c | d",
        ),
        ("run", "  \n", "run exit 3"),
        ("", "only\n", "exit 3: only"),
    ] {
        let ex = Mock::new(move |_, _| Scripted::fails(3, stderr));
        let r = ex.run(&ProcessSpec::new("x", Vec::<String>::new()), &Kill::new());
        assert_eq!(describe_failure(what, &r), want);
    }
}

#[test]
fn a_failing_prepare_measures_nothing_and_a_failing_conclude_is_reported() {
    let ex = Mock::new(|cmd, _| match cmd {
        "prepare" => Scripted::fails(1, "no space\n"),
        _ => Scripted::ok(1_000),
    });
    let inv = invocation();
    let overlap = Overlap::default();
    let err = inv
        .once(&ex, &inv.spec, None, &Kill::new(), &overlap, &mut |_| {})
        .unwrap_err();
    assert_eq!(err, "`prepare` command exit 1: no space");
    assert!(!ex.log().contains(&"main".to_owned()));

    let ex = Mock::new(|cmd, _| match cmd {
        "conclude" => Scripted::fails(2, ""),
        _ => Scripted::ok(1_000),
    });
    let once = inv
        .once(&ex, &inv.spec, None, &Kill::new(), &overlap, &mut |_| {})
        .unwrap();
    assert!(once.result.outcome.is_success());
    assert_eq!(once.concluded.unwrap_err(), "`conclude` command exit 2");
}

#[test]
fn the_shell_cost_is_subtracted_from_every_measured_run() {
    let ex = Mock {
        shell_cost_ns: 2_000,
        ..Mock::ok(10_000)
    };
    let costs = shell_costs(&ex, ["sh"]);
    let cost = *costs["sh"].as_ref().unwrap();
    let inv = Invocation {
        overhead: Some(cost),
        ..Invocation::new(ProcessSpec::shell("sh", "main"))
    };
    let once = inv
        .once(
            &ex,
            &inv.spec,
            None,
            &Kill::new(),
            &Overlap::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        (
            once.result.measurement.wall_ns,
            once.result.measurement.user_ns
        ),
        (8_000, 5_000)
    );
    // Never below zero.
    let inv = Invocation {
        overhead: Some(Measurement {
            wall_ns: 50_000,
            ..Default::default()
        }),
        ..inv
    };
    let once = inv
        .once(
            &ex,
            &inv.spec,
            None,
            &Kill::new(),
            &Overlap::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(once.result.measurement.wall_ns, 0);
}

#[test]
fn after_cancellation_failing_hooks_are_not_failures() {
    let kill = Kill::new();
    let ex = Mock {
        kill_on: Some(("main".into(), kill.clone())),
        ..Mock::new(|cmd, _| match cmd {
            "main" => Scripted::ok(1_000),
            _ => Scripted::fails(1, "stopped"),
        })
    };
    let inv = invocation();
    let once = inv
        .once(
            &ex,
            &inv.spec,
            None,
            &kill,
            &Overlap::default(),
            &mut |_| {},
        )
        .unwrap_err();
    // The prepare failed before the kill: a real failure.
    assert_eq!(once, "`prepare` command exit 1: stopped");
    let inv = Invocation {
        prepare: None,
        ..inv
    };
    let once = inv
        .once(
            &ex,
            &inv.spec,
            None,
            &kill,
            &Overlap::default(),
            &mut |_| {},
        )
        .unwrap();
    assert!(once.result.cancelled && !once.result.outcome.is_success());
    assert_eq!(once.concluded, Ok(()), "a conclude failing after a kill");
    assert_eq!(inv.run_cleanup(&ex, &kill), Ok(()));
}

#[test]
fn pinning_places_hooks_and_the_run_on_the_cpus() {
    struct Cpus(std::sync::Mutex<Vec<Option<Vec<usize>>>>);
    impl Executor for Cpus {
        fn run(&self, spec: &ProcessSpec, _: &Kill) -> benchfleet_metrics::ProcessResult {
            self.0.lock().unwrap().push(spec.cpus.clone());
            let mut r = benchfleet_metrics::ProcessResult::spawn_failed("");
            r.outcome = benchfleet_model::Outcome::Success;
            r
        }
        fn calibrate(&self, _: &str) -> Result<Measurement, benchfleet_metrics::ShellCostError> {
            Ok(Measurement::default())
        }
    }
    let ex = Cpus(Default::default());
    let inv = invocation();
    inv.once(
        &ex,
        &inv.spec,
        Some(&[2, 3]),
        &Kill::new(),
        &Overlap::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(*ex.0.lock().unwrap(), vec![Some(vec![2, 3]); 3]);
}

#[test]
fn shell_tags_read_under_either_name() {
    let tags = |k: &str, ov: &str| {
        BTreeMap::from([
            (k.to_owned(), "sh".to_owned()),
            (ov.to_owned(), "1500".to_owned()),
        ])
    };
    for t in [
        tags(TAG_SHELL, TAG_SHELL_OVERHEAD),
        tags(LEGACY_TAG_SHELL, LEGACY_TAG_SHELL_OVERHEAD),
    ] {
        assert_eq!(shell_of(&t), Some("sh"));
        assert_eq!(shell_overhead_of(&t), Some(Duration::from_nanos(1500)));
    }
    assert_eq!(shell_of(&BTreeMap::new()), None);
}

#[test]
fn command_lines_split_like_a_shell_or_go_through_one() {
    let s = command_spec("echo 'a b' c", None).unwrap();
    assert_eq!((s.program.as_str(), s.args.len()), ("echo", 2));
    assert!(command_spec("echo 'unclosed", None).is_err());
    assert!(command_spec("  ", None).is_err());
    assert_eq!(command_spec("a | b", Some("sh")).unwrap().program, "sh");
}

#[test]
fn a_shell_with_arguments_is_split_and_takes_dash_c_last() {
    let s = command_spec("echo hi", Some("bash --norc")).unwrap();
    assert_eq!(
        (s.program.as_str(), s.args.clone()),
        (
            "bash",
            vec!["--norc".to_string(), "-c".into(), "echo hi".into()]
        )
    );
    let s = command_spec("x", Some("'/opt/my sh' -e")).unwrap();
    assert_eq!(
        (s.program.as_str(), s.args[0].as_str()),
        ("/opt/my sh", "-e")
    );
    assert!(command_spec("x", Some("'unclosed sh")).is_err());
}

#[test]
fn shell_syntax_is_found_outside_quotes_only() {
    let found = |cmd: &str| shell_syntax(cmd);
    for (cmd, needle) in [
        ("echo a && echo b", "`&&`"),
        ("echo a || true", "`||`"),
        ("a | b", "`|`"),
        ("sleep 1 &", "`&`"),
        ("a; b", "`;`"),
        ("echo x > f", "redirection"),
        ("echo x >> f", "redirection"),
        ("cat < f", "redirection"),
        ("exit 1", "builtin `exit`"),
        ("cd /tmp", "builtin `cd`"),
        ("echo $HOME", "expansion"),
        ("echo \"$HOME\"", "expansion"),
        ("echo `date`", "expansion"),
        ("ls *.rs", "glob"),
        ("ls ~", "home"),
        ("FOO=1 env", "assignment (`FOO=`)"),
        ("(cd x)", "subshell"),
        ("echo a\necho b", "line break"),
        ("true # comment", "comment"),
    ] {
        let got = found(cmd).unwrap_or_else(|| panic!("{cmd:?}: no shell syntax found"));
        assert!(got.contains(needle), "{cmd:?}: {got}");
    }
    for cmd in [
        "echo 'a && b' \"c > d\"",
        "echo a\\&\\&b",
        "grep -e 'x|y' f",
        "sleep 0.1",
        "cc -O2 -o a.out a.c",
        "echo a~b x#y",
        "env --opt=1 true",
        "echo '$HOME'",
        "printf '%s\\n' a",
    ] {
        assert_eq!(found(cmd), None, "{cmd:?}");
    }
}
