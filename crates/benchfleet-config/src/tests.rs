// figment::Jail closures return figment::Error, which is large by design.
#![allow(clippy::result_large_err)]

use figment::Jail;

use super::*;

fn load_in(jail: &Jail, flags: &[(&str, Value)]) -> Result<Loaded, ConfigError> {
    let mut s = Sources::standard(jail.directory(), None);
    for (k, v) in flags {
        s = s.flag(k, v.clone());
    }
    load(&s)
}

#[test]
fn defaults_load() {
    let l = load(&Sources::defaults_only()).unwrap();
    assert_eq!(l.config.run.jobs, 0);
    assert!(l.config.run.keep_going);
    assert_eq!(l.config.storage.catalog.backend, CatalogBackend::Redb);
    assert_eq!(l.config.storage.hot.backend, BlobBackend::Catalog);
    assert_eq!(
        l.config.storage.catalog_path(),
        PathBuf::from(".benchfleet/catalog.redb")
    );
    assert_eq!(
        l.config.storage.hot_path(),
        PathBuf::from(".benchfleet/blobs")
    );
}

#[test]
fn layers_override_in_order() {
    Jail::expect_with(|jail| {
        jail.create_file(
            PROJECT_FILE,
            "[run]\njobs = 3\nkeep_going = false\n[storage]\nroot = 'here'\n",
        )?;
        let l = load_in(jail, &[]).unwrap();
        assert_eq!((l.config.run.jobs, l.config.run.keep_going), (3, false));
        jail.set_env("BENCHFLEET_RUN__JOBS", "5");
        let l = load_in(jail, &[]).unwrap();
        assert_eq!(l.config.run.jobs, 5, "environment beats the project file");
        assert!(
            !l.config.run.keep_going,
            "untouched keys keep the project file's value"
        );
        let l = load_in(jail, &[("run.jobs", 7.into())]).unwrap();
        assert_eq!(l.config.run.jobs, 7, "flags beat the environment");
        assert_eq!(l.config.storage.root, PathBuf::from("here"));
        Ok(())
    });
}

#[test]
fn show_names_the_origin_of_each_value() {
    Jail::expect_with(|jail| {
        jail.create_file(PROJECT_FILE, "[run]\njobs = 3\n")?;
        jail.set_env("BENCHFLEET_RUN__KEEP_GOING", "false");
        let l = load_in(jail, &[("output.progress", "none".into())]).unwrap();
        let text = show(&l);
        let line = |key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .unwrap()
                .to_owned()
        };
        assert!(line("run.jobs").contains("benchfleet.toml"), "{text}");
        assert!(
            line("run.keep_going").contains("BENCHFLEET_RUN__KEEP_GOING"),
            "{text}"
        );
        assert!(
            line("output.progress").contains("command-line flag"),
            "{text}"
        );
        assert!(line("storage.root").contains("built-in default"), "{text}");
        assert!(line("run.jobs").starts_with("run.jobs = 3"), "{text}");
        Ok(())
    });
}

/// Each bad input must produce an error naming the key, the problem, and the origin.
#[test]
fn errors_name_key_and_origin() {
    let cases: &[(&str, &[&str])] = &[
        ("[run]\njobs = 'many'\n", &["run.jobs", "benchfleet.toml"]),
        ("[run]\njbos = 2\n", &["jbos", "benchfleet.toml"]),
        (
            "[storage.hot]\nbackend = 'floppy'\n",
            &["storage.hot.backend", "floppy", "fs"],
        ),
        ("[output]\nprogress = 3\n", &["output.progress"]),
        (
            "[storage.cold]\nbackend = 'tape'\n",
            &["storage.cold.backend", "tape", "benchfleet.toml"],
        ),
        (
            "[storage.policy]\nhot_days = 30\nwarm_days = 10\n",
            &[
                "storage.policy.warm_days",
                "less than hot_days",
                "benchfleet.toml",
            ],
        ),
        (
            "[storage.policy]\nwarm_level = 40\n",
            &["storage.policy.warm_level", "zstd level", "benchfleet.toml"],
        ),
        (
            "[storage.policy]\ncold_level = 12\n",
            &["storage.policy.cold_level", "xz preset"],
        ),
        (
            "[storage.policy]\ncold_block_bytes = 10\n",
            &["storage.policy.cold_block_bytes", "1 KiB"],
        ),
        (
            "[storage.policy]\nmigrate_batch_records = 0\n",
            &["storage.policy.migrate_batch_records"],
        ),
        (
            "[storage.policy]\nhot_dyas = 3\n",
            &["hot_dyas", "benchfleet.toml"],
        ),
    ];
    for (file, needles) in cases {
        Jail::expect_with(|jail| {
            jail.create_file(PROJECT_FILE, file)?;
            let err = load_in(jail, &[]).unwrap_err().to_string();
            for n in *needles {
                assert!(err.contains(n), "error for {file:?} lacks {n:?}: {err}");
            }
            Ok(())
        });
    }
}

#[test]
fn variables_that_are_not_keys_are_ignored() {
    Jail::expect_with(|jail| {
        for var in [
            "BENCHFLEET_TEST_POSTGRES_URL",
            "BENCHFLEET_CONFIG",
            "BENCHFLEET_LOG",
            "BENCHFLEET_FAULT_AFTER",
        ] {
            jail.set_env(var, "x");
        }
        load_in(jail, &[]).unwrap();
        jail.set_env("BENCHFLEET_TSET", "x");
        assert!(
            load_in(jail, &[])
                .unwrap_err()
                .to_string()
                .contains("BENCHFLEET_TSET")
        );
        Ok(())
    });
}

#[test]
fn env_errors_name_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("BENCHFLEET_RUN__JOBS", "lots");
        let err = load_in(jail, &[]).unwrap_err().to_string();
        assert!(err.contains("run.jobs"), "{err}");
        assert!(err.contains("BENCHFLEET_RUN__JOBS"), "{err}");
        Ok(())
    });
}

#[test]
fn missing_config_file_is_an_error() {
    let err = load(&Sources {
        config_file: Some("/nonexistent/x.toml".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile(_)));
    assert!(err.to_string().contains("/nonexistent/x.toml"));
}

#[test]
fn tier_defaults_and_overrides() {
    let l = load(&Sources::defaults_only()).unwrap();
    let s = &l.config.storage;
    assert_eq!(
        (s.warm.backend, s.cold.backend),
        (BlobBackend::Fs, BlobBackend::Fs)
    );
    assert_eq!(s.warm_path(), PathBuf::from(".benchfleet/warm"));
    assert_eq!(s.cold_path(), PathBuf::from(".benchfleet/cold"));
    let p = &s.policy;
    assert_eq!((p.hot_days, p.warm_days, p.warm_level), (7, 90, 3));
    assert_eq!(p.cache_bytes, 512 * 1024 * 1024);
    assert!(p.problems().is_empty());
    Jail::expect_with(|jail| {
        jail.create_file(
            PROJECT_FILE,
            "[storage.cold]\nbackend = 'redb'\npath = '/data/cold'\n[storage.policy]\nhot_days = 1\n",
        )?;
        jail.set_env("BENCHFLEET_STORAGE__POLICY__WARM_DAYS", "30");
        let l = load_in(jail, &[("storage.policy.cold_level", 9.into())]).unwrap();
        let s = &l.config.storage;
        assert_eq!(s.cold.backend, BlobBackend::Redb);
        assert_eq!(s.cold_path(), PathBuf::from("/data/cold"));
        assert_eq!(
            (s.policy.hot_days, s.policy.warm_days, s.policy.cold_level),
            (1, 30, 9)
        );
        Ok(())
    });
}

/// Every documented example config loads through the real layering and selects the backends its
/// name promises: (file, catalog, hot, warm, cold).
#[test]
fn example_configs_resolve() {
    use BlobBackend::{Fs, Postgres, Redb, S3};
    let cases: &[(&str, CatalogBackend, [BlobBackend; 3])] = &[
        (
            "all-postgres.toml",
            CatalogBackend::Postgres,
            [Postgres, Postgres, Postgres],
        ),
        (
            "postgres-catalog-s3-tiers.toml",
            CatalogBackend::Postgres,
            [S3, S3, S3],
        ),
        (
            "embedded-hot-s3-cold.toml",
            CatalogBackend::Redb,
            [Redb, Fs, S3],
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    for (file, catalog, tiers) in cases {
        let path = dir.join(file);
        let l = load(&Sources {
            config_file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let s = &l.config.storage;
        assert_eq!(s.catalog.backend, *catalog, "{file}");
        assert_eq!(
            [s.hot.backend, s.warm.backend, s.cold.backend],
            *tiers,
            "{file}"
        );
        assert!(s.backend_problems().is_empty(), "{file}");
        // Every key the example sets is attributed to the example file.
        let text = show(&l);
        assert!(
            text.lines()
                .any(|line| line.starts_with("storage.catalog.backend") && line.contains(*file)),
            "{file}: {text}"
        );
    }
    // And no other config example exists without a case here (the suites beside them, such as
    // quickstart.toml and the scenario suites, have a `[suite]` table).
    let is_suite = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .any(|l| l.trim() == "[suite]")
    };
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml") && !is_suite(n))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// Backend settings that cannot work name the key, the value and where it was set.
#[test]
fn backend_errors_name_key_value_and_origin() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[storage.catalog]\nbackend = 'postgres'\n",
            &["storage.catalog.url", "is empty", "postgres://"],
        ),
        (
            "[storage.catalog]\nbackend = 'postgres'\nurl = 'mysql://u:hunter2@h/db'\n",
            &[
                "storage.catalog.url",
                "mysql://u:***@h/db",
                "benchfleet.toml",
            ],
        ),
        (
            "[storage.catalog]\nbackend = 'postgres'\nurl = 'postgres://h/db'\nschema = 'Bad-Name'\n",
            &["storage.catalog.schema", "Bad-Name", "benchfleet.toml"],
        ),
        (
            "[storage.catalog]\nbackend = 'mongo'\n",
            &["storage.catalog.backend", "mongo", "postgres"],
        ),
        (
            "[storage.hot]\nbackend = 'postgres'\n",
            &["storage.hot.url", "catalog is not postgres"],
        ),
        (
            "[storage.catalog]\nbackend = 'postgres'\nurl = 'postgres://h/db'\n[storage.warm]\nbackend = 'redb'\n",
            &["storage.warm.backend", "redb", "benchfleet.toml"],
        ),
        (
            "[storage.cold]\nbackend = 's3'\n",
            &["storage.cold.bucket", "is empty"],
        ),
        (
            "[storage.cold]\nbackend = 's3'\nbucket = 'b'\nendpoint = 'http://127.0.0.1:9000'\n",
            &[
                "storage.cold.endpoint",
                "http://127.0.0.1:9000",
                "allow_http",
                "benchfleet.toml",
            ],
        ),
        (
            "[storage.cold]\nbackend = 's3'\nbucket = 'b'\nendpoint = 'ftp://x'\n",
            &["storage.cold.endpoint", "ftp://x"],
        ),
        (
            "[storage.cold]\nbackend = 's3'\nbucket = 'b'\naccess_key_id = 'AKIA'\n",
            &["storage.cold.secret_access_key", "together"],
        ),
        (
            "[storage.warm]\nbackend = 'opendal'\n",
            &["storage.warm.scheme", "is empty"],
        ),
        (
            "[storage.cold]\nbackend = 's3'\nbucket = 'b'\nbuckte = 'c'\n",
            &["buckte", "benchfleet.toml"],
        ),
        (
            "[storage.cold]\nbackend = 's3'\nbucket = 'b'\nsecret_access_key = 7\n",
            &["storage.cold.secret_access_key", "credential"],
        ),
        (
            "[storage.catalog]\nbackend = 'postgres'\nurl = 'postgres://h/db'\nconnect_timeout_secs = 0\n",
            &["storage.catalog.connect_timeout_secs"],
        ),
    ];
    for (file, needles) in cases {
        Jail::expect_with(|jail| {
            jail.create_file(PROJECT_FILE, file)?;
            let err = load_in(jail, &[]).unwrap_err().to_string();
            for n in *needles {
                assert!(err.contains(n), "error for {file:?} lacks {n:?}: {err}");
            }
            assert!(!err.contains("hunter2"), "{err}");
            Ok(())
        });
    }
}

/// Credentials never appear in `config show` or in `Debug` output, wherever they were set.
#[test]
fn credentials_are_redacted() {
    Jail::expect_with(|jail| {
        jail.create_file(
            PROJECT_FILE,
            "[storage.catalog]\nbackend = 'postgres'\nurl = 'postgres://bench:hunter2@db:5432/b'\n\
             [storage.cold]\nbackend = 's3'\nbucket = 'b'\naccess_key_id = 'AKIAEXAMPLE'\n\
             [storage.warm]\nbackend = 'opendal'\nscheme = 'fs'\n\
             [storage.warm.options]\nroot = '/data/warm'\npassword = 'pw-opendal'\naccount_key = 'k-opendal'\n",
        )?;
        jail.set_env(
            "BENCHFLEET_STORAGE__COLD__SECRET_ACCESS_KEY",
            "env-secret-value",
        );
        let l = load_in(jail, &[]).unwrap();
        assert_eq!(l.config.storage.cold.secret_access_key, "env-secret-value");
        let shown = show(&l);
        let debug = format!("{l:?}");
        for text in [&shown, &debug] {
            for secret in [
                "hunter2",
                "AKIAEXAMPLE",
                "env-secret-value",
                "pw-opendal",
                "k-opendal",
            ] {
                assert!(!text.contains(secret), "{secret} leaked:\n{text}");
            }
        }
        for (key, want) in [
            ("storage.catalog.url", "postgres://bench:***@db:5432/b"),
            ("storage.cold.secret_access_key", "<redacted>"),
            ("storage.cold.access_key_id", "<redacted>"),
            ("storage.warm.options.root", "/data/warm"),
            ("storage.warm.options.password", "<redacted>"),
        ] {
            let line = shown
                .lines()
                .find(|l| l.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("{key} missing:\n{shown}"));
            assert!(line.contains(want), "{line}");
        }
        let secret_line = shown
            .lines()
            .find(|l| l.starts_with("storage.cold.secret_access_key"))
            .unwrap();
        assert!(
            secret_line.contains("BENCHFLEET_STORAGE__COLD__SECRET_ACCESS_KEY"),
            "{secret_line}"
        );
        Ok(())
    });
}

/// `storage.policy.stream_threshold_bytes` (a byte size) and `storage.policy.writer_lease` (a
/// duration): good values in every spelling, from the file, the environment and flags; bad ones
/// rejected naming the key, the value and where it was set; both shown by `config show`.
#[test]
fn stream_threshold_and_writer_lease() {
    let p = load(&Sources::defaults_only())
        .unwrap()
        .config
        .storage
        .policy;
    assert_eq!(p.stream_threshold_bytes, ByteSize(1 << 20));
    assert_eq!(p.writer_lease.as_duration(), Duration::from_secs(600));

    // (file's [storage.policy] lines, threshold bytes, lease seconds)
    let good: &[(&str, u64, f64)] = &[
        (
            "stream_threshold_bytes = 4096\nwriter_lease = 90\n",
            4096,
            90.0,
        ),
        (
            "stream_threshold_bytes = '2MiB'\nwriter_lease = '10m'\n",
            2 << 20,
            600.0,
        ),
        (
            "stream_threshold_bytes = '1MB'\nwriter_lease = '1h'\n",
            1_000_000,
            3600.0,
        ),
        (
            "stream_threshold_bytes = '1.5KiB'\nwriter_lease = '1500ms'\n",
            1536,
            1.5,
        ),
        ("stream_threshold_bytes = 0\nwriter_lease = 1\n", 0, 1.0),
    ];
    for (lines, bytes, secs) in good {
        Jail::expect_with(|jail| {
            jail.create_file(PROJECT_FILE, &format!("[storage.policy]\n{lines}"))?;
            let l = load_in(jail, &[]).unwrap_or_else(|e| panic!("{lines:?}: {e}"));
            let p = &l.config.storage.policy;
            assert_eq!(p.stream_threshold_bytes.0, *bytes, "{lines:?}");
            assert_eq!(
                p.writer_lease.as_duration().as_secs_f64(),
                *secs,
                "{lines:?}"
            );
            Ok(())
        });
    }

    // (file's [storage.policy] line, what the error must name besides the file)
    let bad: &[(&str, &[&str])] = &[
        (
            "stream_threshold_bytes = '1XB'",
            &["storage.policy.stream_threshold_bytes", "1XB", "unit"],
        ),
        (
            "stream_threshold_bytes = 'lots'",
            &["storage.policy.stream_threshold_bytes", "lots"],
        ),
        (
            "stream_threshold_bytes = -5",
            &["storage.policy.stream_threshold_bytes", "-5"],
        ),
        (
            "stream_threshold_bytes = true",
            &["storage.policy.stream_threshold_bytes", "size"],
        ),
        (
            "writer_lease = '500ms'",
            &["storage.policy.writer_lease", "500ms", "under a second"],
        ),
        (
            "writer_lease = 0",
            &["storage.policy.writer_lease", "0s", "under a second"],
        ),
        (
            "writer_lease = '10 parsecs'",
            &["storage.policy.writer_lease", "10 parsecs"],
        ),
        ("writer_lease = -1", &["storage.policy.writer_lease", "-1"]),
    ];
    for (line, needles) in bad {
        Jail::expect_with(|jail| {
            jail.create_file(PROJECT_FILE, &format!("[storage.policy]\n{line}\n"))?;
            let err = load_in(jail, &[]).unwrap_err().to_string();
            for n in needles.iter().chain(&["benchfleet.toml"]) {
                assert!(err.contains(n), "error for {line:?} lacks {n:?}: {err}");
            }
            Ok(())
        });
    }

    Jail::expect_with(|jail| {
        jail.set_env("BENCHFLEET_STORAGE__POLICY__STREAM_THRESHOLD_BYTES", "3MiB");
        let l = load_in(jail, &[("storage.policy.writer_lease", "2m".into())]).unwrap();
        let p = &l.config.storage.policy;
        assert_eq!(p.stream_threshold_bytes.0, 3 << 20);
        assert_eq!(p.writer_lease.as_duration(), Duration::from_secs(120));
        let text = show(&l);
        let line = |key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .unwrap_or_else(|| panic!("no {key} in {text}"))
                .to_owned()
        };
        let threshold = line("storage.policy.stream_threshold_bytes");
        assert!(
            threshold.contains("\"3MiB\"")
                && threshold.contains("BENCHFLEET_STORAGE__POLICY__STREAM_THRESHOLD_BYTES"),
            "{threshold}"
        );
        let lease = line("storage.policy.writer_lease");
        assert!(
            lease.contains("\"2m\"") && lease.contains("command-line flag"),
            "{lease}"
        );

        jail.set_env("BENCHFLEET_STORAGE__POLICY__WRITER_LEASE", "soon");
        let err = load(&Sources::standard(jail.directory(), None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("storage.policy.writer_lease")
                && err.contains("soon")
                && err.contains("BENCHFLEET_STORAGE__POLICY__WRITER_LEASE"),
            "{err}"
        );
        Ok(())
    });
}

/// `run.sample_interval`: a duration, 250ms by default, checked against its bounds with the key,
/// the value and where it was set.
#[test]
fn run_sample_interval_is_a_bounded_duration() {
    let d = load(&Sources::defaults_only()).unwrap();
    assert_eq!(
        d.config.run.sample_interval.as_duration(),
        Duration::from_millis(250)
    );
    let good: &[(&str, Duration)] = &[
        ("'10ms'", Duration::from_millis(10)),
        ("'1s'", Duration::from_secs(1)),
        ("'10m'", Duration::from_secs(600)),
    ];
    for (value, want) in good {
        Jail::expect_with(|jail| {
            jail.create_file(PROJECT_FILE, &format!("[run]\nsample_interval = {value}\n"))?;
            let l = load_in(jail, &[]).unwrap();
            assert_eq!(l.config.run.sample_interval.as_duration(), *want, "{value}");
            Ok(())
        });
    }
    let bad: &[(&str, &[&str])] = &[
        (
            "'0ms'",
            &[
                "run.sample_interval",
                "0",
                "outside 10ms–10m",
                "benchfleet.toml",
            ],
        ),
        (
            "'5ms'",
            &["run.sample_interval", "5ms", "outside", "benchfleet.toml"],
        ),
        (
            "'1h'",
            &["run.sample_interval", "3600s", "outside", "benchfleet.toml"],
        ),
        (
            "'often'",
            &["run.sample_interval", "often", "benchfleet.toml"],
        ),
    ];
    for (value, needles) in bad {
        Jail::expect_with(|jail| {
            jail.create_file(PROJECT_FILE, &format!("[run]\nsample_interval = {value}\n"))?;
            let err = load_in(jail, &[]).unwrap_err().to_string();
            for n in *needles {
                assert!(err.contains(n), "error for {value} lacks {n:?}: {err}");
            }
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        jail.set_env("BENCHFLEET_RUN__SAMPLE_INTERVAL", "2ms");
        let err = load(&Sources::standard(jail.directory(), None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run.sample_interval") && err.contains("BENCHFLEET_RUN__SAMPLE_INTERVAL"),
            "{err}"
        );
        // A flag wins over the environment, and is named when it is wrong.
        let l = load_in(jail, &[("run.sample_interval", "100ms".into())]).unwrap();
        assert_eq!(
            l.config.run.sample_interval.as_duration(),
            Duration::from_millis(100)
        );
        let err = load_in(jail, &[("run.sample_interval", "1ms".into())])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run.sample_interval") && err.contains("command-line flag"),
            "{err}"
        );
        Ok(())
    });
}
