//! Behaviour of `run` / `run_cancellable` against real children (the crate's own probe binary,
//! `sh`, `sleep`). No timing upper bounds: only lower bounds the kernel guarantees and
//! invariants.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use benchfleet_metrics::{
    ENV_PADDING_VAR, Kill, MemoryLimitVia, OutputMode, ProcessResult, ProcessSpec, allowed_cpus,
    run, run_cancellable, shell_spawn_cost, subtract_overhead,
};
use benchfleet_model::{Measurement, Outcome};

const MIB: u64 = 1 << 20;

fn probe(args: &[&str]) -> ProcessSpec {
    ProcessSpec::new(env!("CARGO_BIN_EXE_benchfleet-probe"), args.iter().copied())
}

fn captured(spec: ProcessSpec) -> ProcessSpec {
    ProcessSpec {
        stdout: OutputMode::Capture { limit: 1 << 16 },
        ..spec
    }
}

fn stdout_text(r: &ProcessResult) -> String {
    let bytes = r
        .stdout
        .as_ref()
        .map(|o| o.to_vec().expect("read the capture"))
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// `VmHWM` (peak resident set) of this test process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("benchfleet-metrics")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn sleep_wall_covers_the_sleep_and_cpu_stays_below_wall() {
    let r = run(&ProcessSpec::new("sleep", ["0.05"]));
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let m = r.measurement;
    assert!(m.wall_ns >= 50_000_000, "wall {} ns < 50 ms", m.wall_ns);
    // A single-threaded sleeper cannot use more CPU than wall time.
    assert!(m.user_ns + m.sys_ns <= m.wall_ns, "{m:?}");
    assert!(m.max_rss_bytes > 0, "{m:?}");
    assert!(
        r.spawn_ns <= m.wall_ns,
        "spawn {} > wall {}",
        r.spawn_ns,
        m.wall_ns
    );
}

#[test]
fn cpu_time_is_the_childs_own() {
    for ms in [30u64, 120] {
        let r = run(&probe(&["spin", &ms.to_string()]));
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        let cpu = r.measurement.user_ns + r.measurement.sys_ns;
        // The probe burns exactly this much CPU time by its own clock; rusage is tick-accounted,
        // so allow one scheduler tick (≤ 10 ms at HZ=100) of slack below.
        assert!(
            cpu + 10_000_000 >= ms * 1_000_000,
            "{ms} ms spin reported {cpu} ns CPU"
        );
        assert!(r.measurement.wall_ns >= cpu / 2, "{:?}", r.measurement);
    }
}

#[test]
fn peak_rss_is_per_run_not_a_high_water_mark() {
    let big = run(&probe(&["alloc", "64"]));
    assert_eq!(big.outcome, Outcome::Success, "{big:?}");
    assert!(
        big.measurement.max_rss_bytes >= 60 * MIB,
        "64 MiB run: {:?}",
        big.measurement
    );
    assert!(
        big.measurement.minor_faults >= (60 * MIB / 4096) / 2,
        "{:?}",
        big.measurement
    );
    // Same process, afterwards: RUSAGE_CHILDREN would still say ≥ 64 MiB here.
    for spec in [
        probe(&["alloc", "1"]),
        ProcessSpec::new("true", Vec::<String>::new()),
    ] {
        let small = run(&spec);
        assert_eq!(small.outcome, Outcome::Success, "{small:?}");
        assert!(
            small.measurement.max_rss_bytes < 30 * MIB,
            "{:?} after a 64 MiB run: {:?}",
            spec.args,
            small.measurement
        );
    }
}

#[test]
fn exit_statuses_and_signals_map_to_outcomes() {
    let cases: &[(&str, Outcome)] = &[
        ("exit 0", Outcome::Success),
        (
            "exit 1",
            Outcome::Failed {
                exit_code: Some(1),
                signal: None,
            },
        ),
        (
            "exit 3",
            Outcome::Failed {
                exit_code: Some(3),
                signal: None,
            },
        ),
        (
            "exit 255",
            Outcome::Failed {
                exit_code: Some(255),
                signal: None,
            },
        ),
        (
            "kill -KILL $$",
            Outcome::Failed {
                exit_code: None,
                signal: Some(9),
            },
        ),
        (
            "kill -TERM $$",
            Outcome::Failed {
                exit_code: None,
                signal: Some(15),
            },
        ),
        (
            "kill -SEGV $$",
            Outcome::Failed {
                exit_code: None,
                signal: Some(11),
            },
        ),
    ];
    for (script, want) in cases {
        let r = run(&ProcessSpec::shell("sh", script));
        assert_eq!(&r.outcome, want, "sh -c {script:?}");
        assert!(!r.cancelled);
    }
}

#[test]
fn spawn_failures_are_outcomes_naming_the_cause() {
    let not_exec = scratch("spawn").join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let missing_dir = scratch("spawn").join("no-such-dir");
    let cases: Vec<(ProcessSpec, &[&str])> = vec![
        (
            ProcessSpec::new("benchfleet-no-such-command-xyz", ["a"]),
            &["benchfleet-no-such-command-xyz", "not found"],
        ),
        (
            ProcessSpec::new("/nonexistent/bin/tool", Vec::<String>::new()),
            &["/nonexistent/bin/tool", "not found"],
        ),
        (
            ProcessSpec::new(not_exec.to_str().unwrap(), Vec::<String>::new()),
            &["not-executable", "permission denied"],
        ),
        (
            ProcessSpec {
                cwd: Some(missing_dir.clone()),
                ..ProcessSpec::new("true", Vec::<String>::new())
            },
            &["no-such-dir", "working directory"],
        ),
        (
            ProcessSpec {
                cpus: Some(vec![100_000]),
                ..ProcessSpec::new("true", Vec::<String>::new())
            },
            &["100000", "may use CPUs"],
        ),
    ];
    for (spec, needles) in cases {
        let r = run(&spec);
        let Outcome::SpawnFailed { message } = &r.outcome else {
            panic!("{spec:?} gave {r:?}")
        };
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        assert_eq!(r.outcome.exit_code(), None);
    }
}

fn pid_is_gone(pid: i32) -> bool {
    // Gone, or a zombie waiting for init to reap it: either way it no longer runs.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let spec = ProcessSpec {
        timeout: Some(Duration::from_millis(200)),
        ..captured(ProcessSpec::shell("sh", "sleep 30 & echo $!; sleep 30"))
    };
    let r = run(&spec);
    assert_eq!(
        r.outcome,
        Outcome::TimedOut {
            timeout_ns: 200_000_000
        },
        "{r:?}"
    );
    assert!(r.measurement.wall_ns >= 200_000_000, "{:?}", r.measurement);
    let grandchild: i32 = stdout_text(&r)
        .parse()
        .unwrap_or_else(|_| panic!("no pid printed: {r:?}"));
    assert!(
        wait_until(|| pid_is_gone(grandchild)),
        "grandchild {grandchild} survived the timeout"
    );
}

#[test]
fn a_run_that_finishes_in_time_is_not_timed_out() {
    let spec = ProcessSpec {
        timeout: Some(Duration::from_secs(60)),
        ..ProcessSpec::shell("sh", "exit 4")
    };
    assert_eq!(
        run(&spec).outcome,
        Outcome::Failed {
            exit_code: Some(4),
            signal: None
        }
    );
}

#[test]
fn stderr_tail_is_bounded_and_absent_when_empty() {
    let digits = |n: usize| -> String { "0123456789".chars().cycle().take(n).collect() };
    // (bytes written, tail kept, expected tail)
    let cases: Vec<(usize, usize, Option<String>)> = vec![
        (0, 4096, None),
        (5, 4096, Some(digits(5))),
        (10_000, 100, Some(digits(10_000)[9_900..].to_string())),
        (300_000, 7, Some(digits(300_000)[300_000 - 7..].to_string())),
        (10_000, 0, None),
    ];
    for (written, tail, want) in cases {
        let spec = ProcessSpec {
            stderr_tail: tail,
            ..probe(&["stderr", &written.to_string()])
        };
        let r = run(&spec);
        assert_eq!(r.outcome, Outcome::Success);
        assert_eq!(r.stderr_tail, want, "wrote {written}, kept {tail}");
    }
}

#[test]
fn stdout_is_discarded_by_default_and_captured_up_to_the_limit() {
    let digits = |n: usize| -> Vec<u8> { b"0123456789".iter().copied().cycle().take(n).collect() };
    // (mode, bytes written, bytes kept (None: not captured), truncated)
    let cases: Vec<(OutputMode, usize, Option<Vec<u8>>, bool)> = vec![
        (OutputMode::Null, 100, None, false),
        (OutputMode::Capture { limit: 100 }, 0, Some(vec![]), false),
        (
            OutputMode::Capture { limit: 100 },
            12,
            Some(digits(12)),
            false,
        ),
        (
            OutputMode::Capture { limit: 10 },
            10,
            Some(digits(10)),
            false,
        ),
        (
            OutputMode::Capture { limit: 10 },
            11,
            Some(digits(10)),
            true,
        ),
        (
            OutputMode::Capture { limit: 10 },
            1000,
            Some(digits(10)),
            true,
        ),
        (OutputMode::Capture { limit: 0 }, 5, Some(vec![]), true),
        // Larger than a pipe buffer and the stream chunk, cut off mid-way.
        (
            OutputMode::Capture { limit: 300_001 },
            1_000_000,
            Some(digits(300_001)),
            true,
        ),
    ];
    for (mode, written, want, truncated) in cases {
        let r = run(&ProcessSpec {
            stdout: mode.clone(),
            ..probe(&["stdout", &written.to_string()])
        });
        assert_eq!(r.outcome, Outcome::Success, "{mode:?} {written}: {r:?}");
        let Some(out) = &r.stdout else {
            assert_eq!(want, None, "{mode:?} {written}: nothing captured");
            continue;
        };
        let want = want.expect("captured although Null");
        assert_eq!(out.len(), want.len() as u64, "{mode:?} {written}");
        assert_eq!(out.is_empty(), want.is_empty(), "{mode:?} {written}");
        assert_eq!(out.to_vec().unwrap(), want, "{mode:?} {written}");
        let mut streamed = Vec::new();
        std::io::Read::read_to_end(&mut out.reader(), &mut streamed).unwrap();
        assert_eq!(streamed, want, "{mode:?} {written}: reader");
        // What is kept is all the file holds: the rest was cut off, not just hidden.
        assert_eq!(out.file().metadata().unwrap().len(), want.len() as u64);
        assert_eq!(std::fs::read(out.proc_path()).unwrap(), want);
        assert_eq!(out.truncated(), truncated, "{mode:?} {written}");
    }
}

#[test]
fn a_big_capture_lives_in_a_file_not_in_memory() {
    const SIZE: u64 = 64 * MIB;
    let before = peak_rss();
    let r = run(&ProcessSpec {
        stdout: OutputMode::Capture {
            limit: 1 << 30, // 1 GiB: usable without 1 GiB of memory
        },
        ..ProcessSpec::new("head", ["-c", &SIZE.to_string(), "/dev/zero"])
    });
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let out = r.stdout.as_ref().expect("captured");
    assert_eq!((out.len(), out.truncated()), (SIZE, false));
    // Read it back through the bounded reader: every byte, in 64 KiB steps.
    let mut reader = out.reader();
    let mut buf = vec![0xffu8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|b| *b == 0), "at {total}");
        total += n as u64;
    }
    assert_eq!(total, SIZE);
    // Neither the capture nor the read-back went through this process's memory (other tests in
    // this binary run beside it, hence a margin well below the output's size rather than 0).
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < SIZE / 4,
        "peak RSS grew by {grown} bytes for a {SIZE}-byte capture"
    );
}

#[test]
fn capture_dir_is_used_and_left_empty_and_a_missing_one_is_named() {
    let dir = scratch("capture-dir");
    let r = run(&ProcessSpec {
        stdout: OutputMode::Capture { limit: 100 },
        capture_dir: Some(dir.clone()),
        ..probe(&["stdout", "5"])
    });
    assert_eq!(stdout_text(&r), "01234");
    // The file is unlinked: it is only reachable through the result.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let link = std::fs::read_link(r.stdout.as_ref().unwrap().proc_path()).unwrap();
    assert!(
        link.starts_with(dir.canonicalize().unwrap()),
        "{}",
        link.display()
    );

    let missing = dir.join("does-not-exist");
    let r = run(&ProcessSpec {
        stdout: OutputMode::Capture { limit: 100 },
        capture_dir: Some(missing.clone()),
        ..probe(&["stdout", "5"])
    });
    match &r.outcome {
        Outcome::SpawnFailed { message } => assert!(
            message.contains(&missing.display().to_string()) && message.contains("captured"),
            "{message}"
        ),
        other => panic!("expected SpawnFailed, got {other:?}"),
    }
    assert!(r.stdout.is_none());
}

#[test]
fn env_cwd_and_env_padding_are_applied() {
    let dir = scratch("cwd").canonicalize().unwrap();
    let with_env = ProcessSpec {
        env: vec![("BENCHFLEET_TEST_VAR".into(), "hello world".into())],
        ..captured(probe(&["env", "BENCHFLEET_TEST_VAR"]))
    };
    assert_eq!(stdout_text(&run(&with_env)), "hello world");
    let overridden = ProcessSpec {
        env: vec![("HOME".into(), "/elsewhere".into())],
        ..captured(probe(&["env", "HOME"]))
    };
    assert_eq!(stdout_text(&run(&overridden)), "/elsewhere");
    let in_dir = ProcessSpec {
        cwd: Some(dir.clone()),
        ..captured(probe(&["pwd"]))
    };
    assert_eq!(stdout_text(&run(&in_dir)), dir.display().to_string());
    for n in [0usize, 1, 333, 4095] {
        let padded = ProcessSpec {
            env_padding: Some(n),
            ..captured(probe(&["env", ENV_PADDING_VAR]))
        };
        assert_eq!(stdout_text(&run(&padded)).len(), n);
    }
}

#[test]
fn kill_terminates_a_running_group_and_escalates_after_grace() {
    // (script, grace, expected signal): a plain sleeper dies of SIGTERM; one ignoring SIGTERM
    // is SIGKILLed after the grace period. Each script touches `$READY` once set up, so the kill
    // never races the shell's start.
    let cases = [
        ("touch \"$READY\"; sleep 30", Duration::from_secs(5), 15),
        (
            "trap '' TERM; touch \"$READY\"; sleep 30 & wait; sleep 30",
            Duration::from_millis(100),
            9,
        ),
        ("touch \"$READY\"; sleep 30", Duration::ZERO, 9),
    ];
    for (i, (script, grace, signal)) in cases.into_iter().enumerate() {
        let ready = scratch("kill").join(format!("ready-{i}"));
        let _ = std::fs::remove_file(&ready);
        let kill = Kill::new();
        let k = kill.clone();
        let spec = ProcessSpec {
            env: vec![("READY".into(), ready.display().to_string())],
            ..ProcessSpec::shell("sh", script)
        };
        let handle = std::thread::spawn(move || run_cancellable(&spec, &k));
        assert!(
            wait_until(|| ready.exists()),
            "{script}: never became ready"
        );
        kill.kill(grace);
        let r = handle.join().unwrap();
        assert!(r.cancelled, "{script}: {r:?}");
        assert_eq!(
            r.outcome,
            Outcome::Failed {
                exit_code: None,
                signal: Some(signal)
            },
            "{script}"
        );
    }
}

#[test]
fn a_killed_handle_stops_runs_started_later() {
    let kill = Kill::new();
    kill.kill(Duration::ZERO);
    assert!(kill.is_killed());
    let r = run_cancellable(&ProcessSpec::new("sleep", ["30"]), &kill);
    assert!(r.cancelled);
    assert_eq!(
        r.outcome,
        Outcome::Failed {
            exit_code: None,
            signal: Some(9)
        }
    );
}

#[test]
fn an_untouched_handle_does_not_disturb_the_run() {
    let r = run_cancellable(&ProcessSpec::shell("sh", "exit 7"), &Kill::new());
    assert!(!r.cancelled);
    assert_eq!(
        r.outcome,
        Outcome::Failed {
            exit_code: Some(7),
            signal: None
        }
    );
}

#[test]
fn counters_are_counts_or_unavailable_never_zero() {
    let r = run(&ProcessSpec {
        counters: true,
        ..probe(&["spin", "20"])
    });
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let c = &r.counters;
    for v in [c.instructions, c.cycles] {
        assert_ne!(v, Some(0), "{c:?}");
    }
    if c.instructions.is_none() || c.cycles.is_none() {
        assert!(
            c.unavailable.as_deref().is_some_and(|w| !w.is_empty()),
            "missing counter without a reason: {c:?}"
        );
    } else {
        // 20 ms of a busy loop is millions of instructions on any CPU.
        assert!(c.instructions > Some(1_000_000), "{c:?}");
    }
    let plain = run(&probe(&["exit", "0"]));
    assert_eq!(plain.counters, Default::default());
}

#[test]
fn cpu_affinity_is_applied_to_the_child() {
    for cpu in allowed_cpus() {
        let r = run(&ProcessSpec {
            cpus: Some(vec![cpu]),
            ..captured(probe(&["cpus"]))
        });
        assert_eq!(stdout_text(&r), cpu.to_string(), "{r:?}");
    }
}

/// `cpus` (ascending) as the kernel writes `Cpus_allowed_list`: `0-2,5`.
fn cpu_list(cpus: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &c in cpus {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == c => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    let list: Vec<String> = ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    list.join(",")
}

/// What the child itself reads in `/proc/self/status` is the pinned set, with or without a
/// memory limit beside it (both are applied by the child before exec).
#[test]
fn a_pinned_child_sees_its_affinity_in_proc_status() {
    let allowed = allowed_cpus();
    let mut cases: Vec<(Vec<usize>, Option<u64>)> = Vec::new();
    for cpu in &allowed {
        cases.push((vec![*cpu], None));
        cases.push((vec![*cpu], Some(512 * MIB)));
    }
    cases.push((allowed.clone(), None));
    for (cpus, limit) in cases {
        let r = run(&ProcessSpec {
            cpus: Some(cpus.clone()),
            memory_limit: limit,
            ..captured(ProcessSpec::new(
                "sh",
                ["-c", "grep Cpus_allowed_list /proc/self/status"],
            ))
        });
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_eq!(
            stdout_text(&r),
            format!("Cpus_allowed_list:\t{}", cpu_list(&cpus)),
            "{cpus:?} {limit:?}"
        );
    }
}

/// A memory limit enforced through `RLIMIT_AS` is what the child reads in `/proc/self/limits`
/// (soft and hard); one enforced through a cgroup puts the child in that cgroup.
#[test]
fn a_limited_child_sees_its_limit() {
    for (limit, cpus) in [(256 * MIB, None), (3 << 30, Some(allowed_cpus()))] {
        let r = run(&ProcessSpec {
            memory_limit: Some(limit),
            cpus,
            ..captured(ProcessSpec::new(
                "sh",
                [
                    "-c",
                    "grep 'Max address space' /proc/self/limits; cat /proc/self/cgroup",
                ],
            ))
        });
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        let text = stdout_text(&r);
        match r.memory_limit {
            Some(MemoryLimitVia::RlimitAs) => {
                let line = text.lines().next().unwrap();
                let values: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
                let want = limit.to_string();
                assert_eq!(values, [want.as_str(), want.as_str()], "{text}");
            }
            Some(MemoryLimitVia::Cgroup) => {
                assert!(text.contains("/benchfleet-"), "{text}");
            }
            None => panic!("a limited run reports its method: {r:?}"),
        }
    }
}

#[test]
fn memory_limit_stops_a_run_that_exceeds_it() {
    // (MiB allocated, limit MiB, succeeds)
    for (alloc, limit, ok) in [(256u64, 64u64, false), (4, 256, true)] {
        let spec = ProcessSpec {
            memory_limit: Some(limit * MIB),
            ..probe(&["alloc", &alloc.to_string()])
        };
        let r = run(&spec);
        assert_eq!(
            r.outcome.is_success(),
            ok,
            "alloc {alloc} MiB under {limit} MiB: {r:?}"
        );
        assert!(
            matches!(
                r.memory_limit,
                Some(MemoryLimitVia::Cgroup | MemoryLimitVia::RlimitAs)
            ),
            "{r:?}"
        );
    }
}

#[test]
fn shell_spawn_cost_is_measured_and_subtracted() {
    let cost = shell_spawn_cost("sh", 5).unwrap();
    assert!(cost.wall_ns > 0 && cost.max_rss_bytes > 0, "{cost:?}");
    let measured = Measurement {
        wall_ns: cost.wall_ns * 3,
        user_ns: 0,
        ..cost
    };
    let net = subtract_overhead(&measured, &cost);
    assert_eq!(net.wall_ns, cost.wall_ns * 2);
    assert_eq!(net.user_ns, 0, "saturates");
    assert_eq!(net.max_rss_bytes, cost.max_rss_bytes, "not additive, kept");

    let errors = [
        shell_spawn_cost("sh", 0).unwrap_err().to_string(),
        shell_spawn_cost("/no/such/shell", 3)
            .unwrap_err()
            .to_string(),
    ];
    assert!(errors[0].contains("at least one sample"), "{}", errors[0]);
    assert!(errors[1].contains("/no/such/shell"), "{}", errors[1]);
}

#[test]
fn a_limited_run_reports_the_method_this_host_supports() {
    let expected = benchfleet_metrics::memory_limit_method();
    let limited = run(&ProcessSpec {
        memory_limit: Some(1 << 30),
        ..ProcessSpec::new("sh", ["-c", "exit 0"])
    });
    assert!(limited.outcome.is_success(), "{:?}", limited.outcome);
    if expected == MemoryLimitVia::RlimitAs {
        assert_eq!(limited.memory_limit, Some(MemoryLimitVia::RlimitAs));
    } else {
        // Creating the cgroup may still be refused (permissions): then it falls back.
        assert!(limited.memory_limit.is_some());
    }
    let unlimited = run(&ProcessSpec::new("sh", ["-c", "exit 0"]));
    assert_eq!(unlimited.memory_limit, None);
}

/// hyperfine's `--input FILE`, `--output=FILE` and `--output=pipe`: stdin from a file, stdout
/// to a file truncated before every run, or to a pipe; with `Inherit` no stderr tail is kept.
#[test]
fn stdin_and_stdout_go_where_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "from the file\n").unwrap();
    let out = dir.path().join("out.txt");
    for _ in 0..2 {
        let r = run(&ProcessSpec {
            stdin: Some(input.clone()),
            stdout: OutputMode::File(out.clone()),
            ..ProcessSpec::new("cat", Vec::<String>::new())
        });
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "from the file\n",
        "truncated before every run"
    );
    let r = run(&ProcessSpec {
        stdin: Some(dir.path().join("missing")),
        ..ProcessSpec::new("cat", Vec::<String>::new())
    });
    assert!(
        matches!(&r.outcome, Outcome::SpawnFailed { message } if message.contains("cannot open its input")),
        "{r:?}"
    );
    // A pipe for stdout; /dev/null is not one.
    for (mode, piped) in [(OutputMode::Pipe, true), (OutputMode::Null, false)] {
        let r = run(&ProcessSpec {
            stdout: mode.clone(),
            ..ProcessSpec::shell("sh", "test -p /dev/stdout")
        });
        assert_eq!(r.outcome.is_success(), piped, "{mode:?}: {r:?}");
    }
    let r = run(&ProcessSpec {
        stdout: OutputMode::Inherit,
        ..ProcessSpec::shell("sh", "echo to-the-terminal >&2; exit 3")
    });
    assert!(!r.outcome.is_success());
    assert_eq!(r.stderr_tail, None, "stderr went to ours");
}
