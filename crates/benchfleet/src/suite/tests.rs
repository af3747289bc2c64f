use super::*;

fn expand_str(toml_text: &str) -> Result<Suite, Error> {
    // Through the loader's path: the file cut into node tables, each read when expanded.
    let tables = split::parse(Path::new("s.toml"), toml_text)?;
    expand_tables(&tables, Path::new("s.toml"), Path::new("/o"))
}

fn names(s: &Suite) -> Vec<&str> {
    s.nodes.iter().map(|n| n.name.as_str()).collect()
}

#[test]
fn matrix_expands_to_cross_product_with_placeholders() {
    let s = expand_str(
        r#"
        [suite]
        name = "q"
        [[job]]
        name = "gen-{size}"
        command = "seq {size}"
        matrix = { size = [10, 20] }
        [[benchmark]]
        name = "sort"
        command = "sort -{flag} {out.gen-{size}}/in"
        needs = ["gen-{size}"]
        matrix = { size = [10, 20], flag = ["n", "g"] }
        "#,
    )
    .unwrap();
    assert_eq!(
        names(&s),
        [
            "gen-10",
            "gen-20",
            "sort[flag=n,size=10]",
            "sort[flag=n,size=20]",
            "sort[flag=g,size=10]",
            "sort[flag=g,size=20]"
        ]
    );
    let b = &s.nodes[3];
    // Pairs up with the job expansion that has the same `size`.
    assert_eq!(b.needs, vec![1]);
    assert_eq!(b.program, "sort");
    assert_eq!(b.args, vec!["-n".to_string(), "/o/q/gen-20/in".into()]);
    assert_eq!(b.parameters["size"], "20");
    assert_eq!(s.nodes[0].command_line(), "seq 10");
}

#[test]
fn needs_by_base_name_pair_up_and_exact_names_work() {
    let s = expand_str(
        r#"
        [suite]
        name = "q"
        [[job]]
        name = "gen"
        command = "seq {size}"
        matrix = { size = [1, 2] }
        [[benchmark]]
        name = "use-{size}"
        command = "cat {out.gen}/x"
        needs = ["gen"]
        matrix = { size = [1, 2] }
        [[benchmark]]
        name = "all"
        command = "true"
        needs = ["gen"]
        [[benchmark]]
        name = "one"
        command = "cat {out.gen[size=2]}/x"
        needs = ["gen[size=2]"]
        "#,
    )
    .unwrap();
    let by = |n: &str| s.nodes.iter().find(|x| x.name == n).unwrap();
    assert_eq!(by("use-2").needs, vec![1]);
    assert_eq!(by("use-2").args, vec!["/o/q/gen_size=2_/x".to_string()]);
    assert_eq!(
        by("all").needs,
        vec![0, 1],
        "without shared keys every expansion is needed"
    );
    assert_eq!(by("one").needs, vec![1]);
}

#[test]
fn shell_commands_and_out_dirs() {
    let s = expand_str(
        r#"
        [suite]
        name = "q"
        [defaults]
        shell = "sh"
        [[job]]
        name = "gen"
        command = "seq 5 > {out}/x"
        "#,
    )
    .unwrap();
    let n = &s.nodes[0];
    assert_eq!(
        (n.program.as_str(), n.args.as_slice()),
        (
            "sh",
            &["-c".to_string(), "seq 5 > /o/q/gen/x".to_string()][..]
        )
    );
    assert_eq!(s.node_out_dir(n), PathBuf::from("/o/q/gen"));
    assert_eq!(n.policy, RunPolicy::JOB);
}

#[test]
fn unknown_braces_are_left_alone() {
    let s = expand_str("[suite]\nname='q'\n[[job]]\nname='a'\ncommand=\"awk '{print $1}' f\"\n")
        .unwrap();
    assert_eq!(s.nodes[0].args, vec!["{print $1}".to_string(), "f".into()]);
}

#[test]
fn policies_follow_hyperfine_defaults_and_overrides() {
    let s = expand_str(
        r#"
        [suite]
        name = "q"
        [defaults]
        warmup = 2
        min_time = "1s"
        [[job]]
        name = "j"
        command = "true"
        [[benchmark]]
        name = "a"
        command = "true"
        [[benchmark]]
        name = "b"
        command = "true"
        runs = 5
        "#,
    )
    .unwrap();
    assert_eq!(
        s.nodes[0].policy,
        RunPolicy::JOB,
        "suite defaults do not turn jobs into benchmarks"
    );
    let a = &s.nodes[1].policy;
    assert_eq!(
        (a.warmup, a.min_runs, a.runs, a.min_time),
        (2, 10, None, Duration::from_secs(1))
    );
    assert_eq!(s.nodes[2].policy.runs, Some(5));
}

#[test]
fn run_count_rules() {
    let p = RunPolicy::BENCHMARK;
    let ms = Duration::from_millis;
    // (policy, first run, expected count)
    let cases = [
        (p.clone(), ms(1), 3000),
        (p.clone(), ms(1000), 10),
        (p.clone(), ms(10_000), 10),
        (
            RunPolicy {
                max_runs: Some(50),
                ..p.clone()
            },
            ms(1),
            50,
        ),
        (
            RunPolicy {
                runs: Some(7),
                ..p.clone()
            },
            ms(1),
            7,
        ),
        (
            RunPolicy {
                min_time: Duration::ZERO,
                min_runs: 3,
                ..p.clone()
            },
            ms(1),
            3,
        ),
    ];
    for (policy, first, want) in cases {
        assert_eq!(policy.run_count(first), want, "{policy:?} {first:?}");
    }
}

/// Each malformed suite must fail with a message that names the problem.
#[test]
fn bad_suites_are_explained() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\nrusn=3\n",
            &["rusn", "line 6"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\nruns='x'\n",
            &["runs", "line 6"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\nneeds=['zz']\n",
            &["needs `zz`", "known: a"],
        ),
        (
            "[suite]\nname='q'\n[[job]]\nname='a'\ncommand='true'\n[[benchmark]]\nname='a'\ncommand='true'\n",
            &["two nodes are named `a`"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='x {out.b}'\n[[job]]\nname='b'\ncommand='true'\n",
            &["not in `needs`"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand=\"echo 'oops\"\n",
            &["quotes"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand=''\n",
            &["empty"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\nmatrix={n=[]}\n",
            &["no values"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\nruns=0\n",
            &["at least 1"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\nmin_runs=5\nmax_runs=2\n",
            &["max_runs", "min_runs"],
        ),
        ("[suite]\nname='q'\n", &["no [[job]] or [[benchmark]]"]),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a-{n}'\ncommand='true'\nmatrix={n=[1,1]}\n",
            &["both expand to `a-1`"],
        ),
        (
            "[suite]\nname='q'\n[[benchmark]]\nname='a'\ncommand='true'\ntimeout='soon'\n",
            &["soon", "duration"],
        ),
    ];
    for (text, needles) in cases {
        let err = expand_str(text).unwrap_err().to_string();
        for n in *needles {
            assert!(err.contains(n), "error for {text:?} lacks {n:?}:\n{err}");
        }
        assert!(
            err.contains("s.toml"),
            "error does not name the file: {err}"
        );
    }
}

#[test]
fn sanitize_never_escapes() {
    for (name, want) in [
        ("a/b", "a_b"),
        ("..", "_."),
        ("x y", "x_y"),
        ("ok-1.2", "ok-1.2"),
        (".hidden", "_hidden"),
    ] {
        assert_eq!(sanitize(name), want);
    }
}

#[test]
fn hooks_inherit_defaults_and_take_placeholders_and_the_shell() {
    let s = expand_str(
        r#"
        [suite]
        name = "q"
        [defaults]
        setup = "make -C {out}"
        cleanup = ["rm", "-rf", "{out}/tmp"]
        [[benchmark]]
        name = "b-{n}"
        command = "run {n}"
        prepare = "sync {n}"
        matrix = { n = [1] }
        [[benchmark]]
        name = "c"
        command = "true"
        shell = "bash"
        setup = "echo own"
        "#,
    )
    .unwrap();
    let cmd = |c: &Option<Box<Command>>| c.as_deref().map(|c| (c.program.clone(), c.args.clone()));
    let b = s.nodes[0].hooks();
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        cmd(&b.setup),
        Some(("make".into(), words(&["-C", "/o/q/b-1"])))
    );
    assert_eq!(cmd(&b.prepare), Some(("sync".into(), words(&["1"]))));
    assert_eq!(b.conclude, None);
    assert_eq!(
        cmd(&b.cleanup),
        Some(("rm".into(), words(&["-rf", "/o/q/b-1/tmp"])))
    );
    let c = s.nodes[1].hooks();
    // The node's own hook wins over the default; its shell runs it.
    assert_eq!(
        cmd(&c.setup),
        Some(("bash".into(), words(&["-c", "echo own"])))
    );
    assert_eq!(
        c.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["setup", "cleanup"]
    );
}

#[test]
fn a_hook_with_bad_quotes_is_an_error_naming_the_node_and_field() {
    let err = expand_str(
        "[suite]\nname = \"q\"\n[[benchmark]]\nname = \"b\"\ncommand = \"true\"\nprepare = \"echo 'unclosed\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("benchmark `b` `prepare`"), "{err}");
}

fn load_node(lines: &str) -> Result<Suite, Error> {
    expand_str(&format!(
        "[suite]\nname = \"q\"\n[[benchmark]]\nname = \"api\"\ncommand = \"true\"\n{lines}\n"
    ))
}

#[test]
fn a_load_table_resolves_into_the_load_commands_profile() {
    let s = load_node(
        "load = { profile = \"stress\", concurrency = 2, steps = 2, step_duration = \"300ms\", window = \"100ms\" }",
    )
    .unwrap();
    let plan = s.nodes[0].load.as_ref().expect("a load node");
    let steps: Vec<(u32, u128)> = plan
        .profile
        .steps
        .iter()
        .map(|s| (s.concurrency, s.duration.as_millis()))
        .collect();
    assert_eq!(steps, [(2, 300), (4, 300)], "ramps to concurrency × steps");
    assert_eq!(plan.window, Duration::from_millis(100));

    let s = load_node("load = { concurrency = 4, rate = 200, duration = \"30s\" }").unwrap();
    let plan = s.nodes[0].load.as_ref().unwrap();
    assert_eq!(plan.profile.kind.as_str(), "soak", "soak is the default");
    assert_eq!(plan.profile.steps[0].rate, Some(200.0));
    assert_eq!(plan.window, crate::loadgen::DEFAULT_WINDOW);

    // Run controls of [defaults] do not apply to a load node; they still apply beside it.
    let s = expand_str(
        "[suite]\nname='q'\n[defaults]\nwarmup=3\nruns=5\n[[benchmark]]\nname='a'\ncommand='true'\nload={duration='1s'}\n[[benchmark]]\nname='b'\ncommand='true'\n",
    )
    .unwrap();
    assert_eq!(s.nodes[0].policy.warmup, 0);
    assert_eq!(
        (s.nodes[1].policy.warmup, s.nodes[1].policy.runs),
        (3, Some(5))
    );
    assert!(s.nodes[1].load.is_none());
}

/// Each bad `load` table is an error naming the file, the node and the key.
#[test]
fn bad_load_tables_are_explained() {
    let cases: &[(&str, &[&str])] = &[
        (
            "load = { profile = \"soke\", duration = 1 }",
            &["`load.profile`", "soke", "soak, stress or spike"],
        ),
        (
            "load = { concurrency = 0, duration = 1 }",
            &["`load.concurrency` must be at least 1"],
        ),
        (
            "load = { concurrency = 4 }",
            &["`load.duration` is missing"],
        ),
        (
            "load = { profile = \"spike\" }",
            &["`load.duration` is missing"],
        ),
        (
            "load = { profile = \"stress\", steps = 2 }",
            &["`load.step_duration` (or `load.duration`) is missing"],
        ),
        (
            "load = { duration = 0 }",
            &["`load.duration` must be longer than zero"],
        ),
        (
            "load = { duration = 1, window = 0 }",
            &["`load.window` must be longer than zero"],
        ),
        (
            "load = { duration = \"1h\", window = \"1ms\" }",
            &["`load.window` (1ms) cuts", "3600000 windows"],
        ),
        (
            "load = { duration = 1, rate = 0 }",
            &["`load.rate` must be a positive number"],
        ),
        ("load = { duration = 1, rate = -3 }", &["`load.rate`", "-3"]),
        (
            "load = { duration = 1, concurrency = 5000 }",
            &["`load.concurrency` (5000) is above the limit"],
        ),
        (
            "load = { duration = 1, steps = 3 }",
            &[
                "`load.steps` does not apply to a soak profile",
                "`load.duration`",
            ],
        ),
        (
            "load = { duration = 1, burst = 3 }",
            &["`load.burst` does not apply to a soak profile"],
        ),
        (
            "load = { profile = \"stress\", duration = 1, baseline = 2 }",
            &["`load.baseline` does not apply to a stress profile"],
        ),
        (
            "load = { profile = \"spike\", duration = 1, steps = 2 }",
            &["`load.steps` does not apply to a spike profile"],
        ),
        (
            "load = { profile = \"stress\", concurrency = 4, max_concurrency = 2, duration = 1 }",
            &["`load.max_concurrency` (2) is below the starting `load.concurrency` (4)"],
        ),
        (
            "load = { profile = \"stress\", steps = 2, step_duration = 1, duration = 3 }",
            &["`load.step_duration` (1s) × `load.steps` (2) is not `load.duration` (3s)"],
        ),
        (
            "load = { profile = \"stress\", steps = 0, duration = 1 }",
            &["`load.steps` must be between 1 and 10000"],
        ),
        (
            "load = { profile = \"stress\", max_rate = 5, duration = 1 }",
            &["`load.max_rate` needs `load.rate`"],
        ),
        (
            "load = { profile = \"spike\", duration = 1, burst_duration = 2 }",
            &["`load.burst_duration` (2s) must be shorter than `load.duration` (1s)"],
        ),
        (
            "load = { profile = \"spike\", duration = 5, concurrency = 2, baseline = 3 }",
            &["`load.baseline` (3) and `load.concurrency` (2)"],
        ),
        (
            "load = { profile = \"spike\", duration = 5, burst_rate = 9 }",
            &["`load.burst_rate` needs `load.rate`"],
        ),
        (
            "runs = 5\nload = { duration = 1 }",
            &["`runs` cannot be combined with `load`"],
        ),
        (
            "warmup = 1\nload = { duration = 1 }",
            &["`warmup` cannot be combined with `load`"],
        ),
        (
            "min_time = 1\nload = { duration = 1 }",
            &["`min_time` cannot be combined with `load`"],
        ),
        (
            "prepare = \"sync\"\nload = { duration = 1 }",
            &["`prepare` cannot be combined with `load`", "`setup`"],
        ),
        (
            "load = { duration = 1, concurency = 2 }",
            &["concurency", "line 6"],
        ),
        (
            "load = { duration = 1, concurrency = \"four\" }",
            &["line 6", "load"],
        ),
        (
            "load = { duration = 1, concurrency = -1 }",
            &["line 6", "load"],
        ),
        ("load = { duration = \"soon\" }", &["soon", "duration"]),
    ];
    for (lines, needles) in cases {
        let err = load_node(lines).unwrap_err().to_string();
        assert!(err.contains("s.toml"), "{lines}: no file in {err}");
        // Errors found after parsing name the node; parse errors give the line instead.
        assert!(
            err.contains("benchmark `api`") || err.contains("line 6"),
            "{lines}: no node in {err}"
        );
        for n in *needles {
            assert!(err.contains(n), "{lines}: {err:?} lacks {n:?}");
        }
    }
    // Inherited per-run hooks and a load on a job are refused too, by name.
    let err = expand_str(
        "[suite]\nname='q'\n[defaults]\nconclude='sync'\n[[benchmark]]\nname='a'\ncommand='true'\nload={duration=1}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "benchmark `a`: `conclude` (inherited from [defaults]) cannot be combined with `load`"
        ),
        "{err}"
    );
    let err =
        expand_str("[suite]\nname='q'\n[[job]]\nname='j'\ncommand='true'\nload={duration=1}\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("job `j`: `load` is for [[benchmark]] nodes"),
        "{err}"
    );
}

/// `{ k0 = [0, 1, …], k1 = […], … }`: `keys` keys of `values` values each.
fn matrix(keys: usize, values: usize) -> String {
    let list: Vec<String> = (0..values).map(|v| v.to_string()).collect();
    let keys: Vec<String> = (0..keys)
        .map(|k| format!("k{k} = [{}]", list.join(", ")))
        .collect();
    format!("{{ {} }}", keys.join(", "))
}

#[test]
fn a_suite_larger_than_its_limit_is_refused_before_it_is_expanded() {
    // (suite, nodes it expands into, or words the refusal must contain)
    let cases: Vec<(String, Result<usize, Vec<&str>>)> = vec![
        // The issue's 8 keys × 10 values: 10^8 nodes, refused at once without expanding.
        (
            format!(
                "[suite]\nname = 'q'\n[[job]]\nname = 'grid'\ncommand = 'true'\nmatrix = {}",
                matrix(8, 10)
            ),
            Err(vec![
                "s.toml",
                "expands into 100000000 nodes",
                "more than its limit of 1000000",
                "job `grid` expands into 100000000 nodes",
                "k0 10 × k1 10",
                "`max_nodes = 100000000` under `[suite]`",
            ]),
        ),
        // More than u64 can count is refused too.
        (
            format!(
                "[suite]\nname = 'q'\n[[benchmark]]\nname = 'b'\ncommand = 'true'\nmatrix = {}",
                matrix(20, 10)
            ),
            Err(vec![
                "expands into more than 18446744073709551615 nodes",
                "benchmark `b`",
                "Shrink the matrix",
            ]),
        ),
        // One over the default limit, summed over nodes: the largest node is named.
        (
            format!(
                "[suite]\nname = 'q'\n[[job]]\nname = 'one'\ncommand = 'true'\n\
                 [[benchmark]]\nname = 'b'\ncommand = 'true'\nmatrix = {}",
                matrix(2, 1000)
            ),
            Err(vec![
                "expands into 1000001 nodes",
                "the largest, benchmark `b`, expands into 1000000 nodes",
            ]),
        ),
        // `max_nodes` raises or lowers the limit: 6 + 6 nodes fit in 12, not in 11.
        (
            format!(
                "[suite]\nname = 'q'\nmax_nodes = 12\n[[job]]\nname = 'j'\ncommand = 'true'\n\
                 matrix = {}\n[[benchmark]]\nname = 'b'\ncommand = 'true'\nmatrix = {}",
                matrix(1, 6),
                "{ x = [1, 2], y = [1, 2, 3] }"
            ),
            Ok(12),
        ),
        (
            format!(
                "[suite]\nname = 'q'\nmax_nodes = 11\n[[job]]\nname = 'j'\ncommand = 'true'\n\
                 matrix = {}\n[[benchmark]]\nname = 'b'\ncommand = 'true'\nmatrix = {}",
                matrix(1, 6),
                "{ x = [1, 2], y = [1, 2, 3] }"
            ),
            Err(vec![
                "expands into 12 nodes, more than its limit of 11",
                "the largest, job `j`, expands into 6 nodes (matrix k0 6). Shrink",
                "`max_nodes = 12`",
            ]),
        ),
        (
            "[suite]\nname = 'q'\nmax_nodes = 1\n[[job]]\nname = 'j'\ncommand = 'true'\n".into(),
            Ok(1),
        ),
    ];
    for (text, expected) in cases {
        match (expand_str(&text), expected) {
            (Ok(s), Ok(n)) => assert_eq!(s.nodes.len(), n, "{text}"),
            (Err(e @ Error::SuiteTooLarge { .. }), Err(needles)) => {
                assert!(e.is_user_input());
                let msg = e.to_string();
                for n in needles {
                    assert!(msg.contains(n), "{msg:?} lacks {n:?}");
                }
            }
            (got, expected) => panic!("{text}\ngot {got:?}, expected {expected:?}"),
        }
    }
}

/// Benchmarks run alone unless they or `[defaults]` opt in to sharing; jobs share unless they
/// set `exclusive = true` themselves (`[defaults]` is for benchmarks).
#[test]
fn benchmarks_are_exclusive_by_default_and_may_opt_in_to_sharing() {
    // ([defaults] line, node table, node line, exclusive)
    let cases = [
        ("", "benchmark", "", true),
        ("", "job", "", false),
        ("", "benchmark", "exclusive = false", false),
        ("", "job", "exclusive = true", true),
        ("exclusive = false", "benchmark", "", false),
        ("exclusive = false", "benchmark", "exclusive = true", true),
        ("exclusive = true", "job", "", false),
        ("exclusive = false", "job", "exclusive = true", true),
    ];
    for (defaults, table, line, want) in cases {
        let text = format!(
            "[suite]\nname='q'\n[defaults]\n{defaults}\n[[{table}]]\nname='n'\ncommand='true'\n{line}\n"
        );
        let s = expand_str(&text).unwrap();
        assert_eq!(s.nodes[0].exclusive, want, "{text}");
    }
}

/// In a worktree, `{worktree}` is its path everywhere a command, hook, environment, `cwd` or
/// input is written, and every node runs there (its own `cwd` under it).
#[test]
fn a_suite_in_a_worktree_runs_there() {
    let s = expand_str(
        r#"
        [suite]
        name = "w"
        [[job]]
        name = "build"
        command = "make -C {worktree} out={out}"
        env = { SRC = "{worktree}/src" }
        inputs = ["{worktree}/Makefile"]
        setup = "ls {worktree}"
        [[benchmark]]
        name = "bench"
        command = "./bin/tool"
        cwd = "sub"
        needs = ["build"]
        "#,
    )
    .unwrap();
    let w = s.in_worktree(Path::new("/tmp/wt/abc"));
    let (build, bench) = (&w.nodes[0], &w.nodes[1]);
    assert_eq!(build.args, ["-C", "/tmp/wt/abc", "out=/o/w/build"]);
    assert!(
        build.command_line().starts_with("make -C /tmp/wt/abc "),
        "{}",
        build.command_line()
    );
    assert_eq!(build.settings().env["SRC"], "/tmp/wt/abc/src");
    assert_eq!(
        build.settings().inputs,
        [PathBuf::from("/tmp/wt/abc/Makefile")]
    );
    assert_eq!(build.hooks().setup.as_ref().unwrap().args, ["/tmp/wt/abc"]);
    assert_eq!(
        build.settings().cwd.as_deref(),
        Some(Path::new("/tmp/wt/abc"))
    );
    assert_eq!(
        bench.settings().cwd.as_deref(),
        Some(Path::new("/tmp/wt/abc/sub"))
    );
    assert_eq!(bench.program, "./bin/tool");
    // The suite itself is unchanged.
    assert_eq!(s.nodes[0].args, ["-C", "{worktree}", "out=/o/w/build"]);
}

/// `only` keeps a node and what it needs, transitively, with `needs` renumbered.
#[test]
fn only_keeps_a_node_and_its_needs() {
    let s = expand_str(
        r#"
        [suite]
        name = "o"
        [[job]]
        name = "c"
        command = "true"
        needs = ["a"]
        [[job]]
        name = "a"
        command = "true"
        [[job]]
        name = "unrelated"
        command = "true"
        [[benchmark]]
        name = "b"
        command = "true"
        needs = ["c"]
        [[benchmark]]
        name = "other"
        command = "true"
        "#,
    )
    .unwrap();
    let o = s.only("b").unwrap();
    assert_eq!(names(&o), ["c", "a", "b"]);
    assert_eq!(o.nodes[0].needs, [1]);
    assert!(o.nodes[1].needs.is_empty());
    assert_eq!(o.nodes[2].needs, [0]);
    assert!(s.only("nope").is_none());
    assert_eq!(s.benchmark_names(), ["b", "other"]);
}

#[test]
fn requires_takes_matrix_placeholders_and_refuses_empty_or_spaced_values() {
    let s = expand_str(
        r#"
        [suite]
        name = "q"
        [[benchmark]]
        name = "log-{tool}"
        command = "{tool} log"
        matrix = { tool = ["git", "jj"] }
        requires = ["{tool}"]
        "#,
    )
    .unwrap();
    assert_eq!(s.nodes[0].settings().requires, ["git"]);
    assert_eq!(s.nodes[1].settings().requires, ["jj"]);

    for (value, says) in [("\"\"", "is empty"), ("\"jj log\"", "whitespace")] {
        let e = expand_str(&format!(
            "[suite]\nname = \"q\"\n[[job]]\nname = \"a\"\ncommand = \"true\"\nrequires = [{value}]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("s.toml"), "{e}");
        assert!(e.contains("job `a`"), "{e}");
        assert!(e.contains("`requires`"), "{e}");
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn unavailable_nodes_and_their_dependents_are_left_out_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let tool = bin.join("present-tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Not executable: does not count as found.
    std::fs::write(bin.join("plain-file"), "").unwrap();
    let path = bin.display().to_string();
    let s = expand_str(&format!(
        r#"
        [suite]
        name = "q"
        [defaults]
        env = {{ PATH = "{path}" }}
        [[job]]
        name = "gen"
        command = "true"
        [[job]]
        name = "prep-{{tool}}"
        command = "true"
        needs = ["gen"]
        matrix = {{ tool = ["present-tool", "absent-tool", "plain-file"] }}
        requires = ["{{tool}}"]
        [[benchmark]]
        name = "op-{{tool}}"
        command = "true"
        needs = ["prep-{{tool}}"]
        matrix = {{ tool = ["present-tool", "absent-tool", "plain-file"] }}
        "#
    ))
    .unwrap();
    let (kept, gone) = s.unavailable(dir.path());
    let kept = kept.expect("some nodes are unavailable");
    assert_eq!(
        names(&kept),
        ["gen", "prep-present-tool", "op-present-tool"]
    );
    // Renumbered needs still point at the right nodes.
    assert_eq!(kept.nodes[1].needs, [0]);
    assert_eq!(kept.nodes[2].needs, [1]);
    let gone: Vec<(&str, &str)> = gone
        .nodes
        .iter()
        .map(|(n, r)| (n.name.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        gone,
        [
            (
                "prep-absent-tool",
                "requires `absent-tool`, which is not on PATH"
            ),
            (
                "prep-plain-file",
                "requires `plain-file`, which is not on PATH"
            ),
            (
                "op-absent-tool",
                "needs `prep-absent-tool`, which is skipped"
            ),
            ("op-plain-file", "needs `prep-plain-file`, which is skipped"),
        ]
    );

    // Everything present: nothing is left out, and the suite is not copied.
    let all = expand_str(&format!(
        "[suite]\nname = \"q\"\n[[job]]\nname = \"a\"\ncommand = \"true\"\nrequires = [\"{}\"]\n",
        tool.display()
    ))
    .unwrap();
    let (kept, gone) = all.unavailable(dir.path());
    assert!(kept.is_none() && gone.nodes.is_empty() && gone.missing.is_empty());
}
