use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary working directory with its own `.benchfleet/` store.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Like [`new`](Self::new), with the hot tier on local files (one per record), for tests that
    /// read what was stored straight from the fs layout.
    pub fn with_fs_hot() -> Self {
        let w = Self::new();
        w.file("benchfleet.toml", "[storage.hot]\nbackend = \"fs\"\n");
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `name` with `text` and return its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write test file");
        p
    }

    /// A `benchfleet` command running in this directory, with a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_benchfleet"));
        c.args(args).current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("BENCHFLEET_") {
                c.env_remove(k);
            }
        }
        c.env("BENCHFLEET_OUTPUT__PROGRESS", "none");
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Out(self.cmd(args).output().expect("run benchfleet"))
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert_eq!(out.code(), 0, "{out:?}");
        serde_json::from_slice(&out.0.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
    }
}

/// Process output with readable accessors.
pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// The result object named `name` in a hyperfine-style JSON export.
pub fn result<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["results"]
        .as_array()
        .expect("results array")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result named {name} in {json}"))
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Every stored run record (raw JSON), read from the fs hot tier of a
/// [`Workdir::with_fs_hot`] directory.
pub fn stored_records(w: &Workdir) -> Vec<serde_json::Value> {
    fn walk(dir: &Path, out: &mut Vec<serde_json::Value>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.components().any(|c| c.as_os_str() == "records")
                && let Ok(bytes) = std::fs::read(&p)
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && v.get("measurement").is_some()
            {
                out.push(v);
            }
        }
    }
    let mut out = Vec::new();
    walk(&w.path().join(".benchfleet"), &mut out);
    out
}
