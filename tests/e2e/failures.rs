use crate::support::{Workdir, result};

#[test]
fn a_failing_job_is_recorded_and_its_dependents_skipped() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        r#"
        [suite]
        name = "fail"
        [[job]]
        name = "broken"
        shell = "sh"
        command = "echo 'disk on fire' >&2; exit 3"
        [[benchmark]]
        name = "after-broken"
        command = "true"
        needs = ["broken"]
        [[benchmark]]
        name = "independent"
        command = "true"
        runs = 2
        [[job]]
        name = "missing"
        command = "no-such-command-benchfleet --flag"
        "#,
    );
    let out = w.run(&["run", suite.to_str().unwrap(), "--export-json", "o.json"]);
    assert_eq!(out.code(), 1, "{out:?}");
    let err = out.stderr();
    assert!(err.contains("FAILED  broken: exit 3"), "{err}");
    assert!(err.contains("disk on fire"), "stderr tail is shown: {err}");
    assert!(err.contains("SKIPPED after-broken"), "{err}");
    assert!(err.contains("FAILED  missing"), "{err}");
    assert!(err.contains("no-such-command-benchfleet"), "{err}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("o.json")).unwrap()).unwrap();
    assert_eq!(
        result(&json, "broken")["exit_codes"],
        serde_json::json!([3])
    );
    assert_eq!(
        result(&json, "independent")["exit_codes"],
        serde_json::json!([0, 0]),
        "the rest still ran"
    );
    assert!(
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "after-broken")
    );

    // The failure is stored, stderr tail included.
    let shown = w.json(&["show", "latest", "--format", "json"]);
    assert_eq!(
        result(&shown, "broken")["exit_codes"],
        serde_json::json!([3])
    );
    assert!(
        result(&shown, "broken")["failures"][0]
            .as_str()
            .unwrap()
            .contains("exit 3"),
        "{shown}"
    );
    let h = w.json(&["history", "--format", "json"]);
    assert_eq!(h[0]["status"], "failed");
}

/// Bad input: exit code 2 and a message naming the file, the key and what to do.
#[test]
fn bad_input_is_explained() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown-key.toml",
            "[suite]\nname='x'\n[[benchmark]]\nname='a'\ncommand='true'\nrusn=3\n",
            &["unknown-key.toml", "rusn", "line 6"],
        ),
        (
            "wrong-type.toml",
            "[suite]\nname='x'\n[[benchmark]]\nname='a'\ncommand='true'\nwarmup='lots'\n",
            &["wrong-type.toml", "warmup"],
        ),
        (
            "cycle.toml",
            "[suite]\nname='x'\n[[job]]\nname='a'\ncommand='true'\nneeds=['b']\n[[job]]\nname='b'\ncommand='true'\nneeds=['a']\n",
            &["cycle.toml", "cycle", "a -> b"],
        ),
    ];
    for (file, text, needles) in cases {
        let w = Workdir::new();
        let suite = w.file(file, text);
        let out = w.run(&["run", suite.to_str().unwrap()]);
        assert_eq!(out.code(), 2, "{file}: {out:?}");
        for n in *needles {
            assert!(
                out.stderr().contains(n),
                "{file}: stderr lacks {n:?}: {out:?}"
            );
        }
        assert!(!out.stderr().contains("panicked"), "{out:?}");
        assert!(
            !w.path().join(".benchfleet").exists(),
            "{file}: nothing is stored for a rejected suite"
        );
    }

    let w = Workdir::new();
    let out = w.run(&["run", "does-not-exist.toml"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("does-not-exist.toml"), "{out:?}");

    w.file("benchfleet.toml", "[run]\njobs = 'many'\n");
    let out = w.run(&["history"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr().contains("run.jobs") && out.stderr().contains("benchfleet.toml"),
        "{out:?}"
    );

    let w = Workdir::new();
    let out = w.run(&["show", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("benchfleet history"), "{out:?}");
}

#[test]
fn ctrl_c_keeps_what_was_measured() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname='int'\n[[benchmark]]\nname='slow'\ncommand='sleep 0.1'\nruns=200\n",
    );
    let child = w
        .cmd(&["run", suite.to_str().unwrap(), "-j", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some runs are measured, then interrupt like a terminal's Ctrl-C would.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = crate::support::Out(child.wait_with_output().unwrap());
    assert_eq!(out.code(), 130, "{out:?}");
    assert!(out.stderr().contains("kept"), "{out:?}");

    let shown = w.json(&["show", "latest", "--format", "json"]);
    let n = result(&shown, "slow")["times"].as_array().unwrap().len();
    assert!(n > 0 && n < 200, "{n} runs stored");
    let h = w.json(&["history", "--format", "json"]);
    assert_eq!(h[0]["status"], "interrupted");
}

#[test]
fn a_suite_too_large_to_expand_is_refused_with_its_count() {
    // The issue's 8 keys × 10 values: 10^8 nodes, which took 15 GB before the guard. The child
    // gets 2 GiB of address space, so expanding it could only abort: exit 2 shows it was
    // refused from the count alone.
    let values = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
    let keys: Vec<String> = (0..8).map(|k| format!("k{k} = {values}")).collect();
    let w = Workdir::new();
    let suite = w.file(
        "huge.toml",
        &format!(
            "[suite]\nname = 'huge'\n[[job]]\nname = 'grid'\ncommand = 'true'\nmatrix = {{ {} }}\n",
            keys.join(", ")
        ),
    );
    for command in ["plan", "run"] {
        let mut cmd = w.cmd(&[command, suite.to_str().unwrap()]);
        // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                let limit = libc::rlimit {
                    rlim_cur: 2 << 30,
                    rlim_max: 2 << 30,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = crate::support::Out(cmd.output().unwrap());
        assert_eq!(out.code(), 2, "{command}: {out:?}");
        for needle in [
            "huge.toml",
            "100000000 nodes",
            "limit of 1000000",
            "job `grid`",
            "max_nodes",
        ] {
            assert!(
                out.stderr().contains(needle),
                "{command}: stderr lacks {needle:?}: {out:?}"
            );
        }
        assert!(
            !w.path().join(".benchfleet").exists(),
            "{command}: nothing is stored for a refused suite"
        );
    }
}
