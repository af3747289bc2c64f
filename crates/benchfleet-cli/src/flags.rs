//! Flag groups that several commands share, as clap `#[derive(Args)]` structs each command
//! flattens, and the value parsers and value enums of more than one command. Flags stay raw
//! here; commands resolve them (with the configuration) into the facade's settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use benchfleet::model::DurationSpec;

/// How a suite executes (`run`): concurrency, cache, resume and failure policy. Each flag
/// overrides its configuration key ([`ExecFlags::config_overrides`]).
#[derive(Debug, Args)]
pub struct ExecFlags {
    /// Maximum number of jobs running at once (default: available cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Continue the latest unfinished run of this suite (same run id): only what did not finish
    /// runs.
    #[arg(long)]
    pub resume: bool,

    /// Run every node, even unchanged ones with a stored result (results are still cached).
    #[arg(long)]
    pub no_cache: bool,

    /// Stop starting new jobs at the first failure.
    #[arg(long, conflicts_with = "keep_going")]
    pub fail_fast: bool,

    /// Keep running independent jobs after a failure (the default).
    #[arg(long)]
    pub keep_going: bool,
}

impl ExecFlags {
    /// The configuration keys these flags set (the flags layer of the configuration).
    pub fn config_overrides(&self) -> Vec<(String, benchfleet_config::Value)> {
        let mut flags = Vec::new();
        if let Some(j) = self.jobs {
            flags.push(("run.jobs".to_owned(), j.into()));
        }
        if self.fail_fast {
            flags.push(("run.keep_going".to_owned(), false.into()));
        }
        if self.keep_going {
            flags.push(("run.keep_going".to_owned(), true.into()));
        }
        if self.no_cache {
            flags.push(("run.cache".to_owned(), false.into()));
        }
        flags
    }
}

/// `--tag KEY=VALUE`, for the commands that store one run (`bench`, `load`).
#[derive(Debug, Args)]
pub struct TagFlags {
    /// Label stored with the run, e.g. `--tag branch=main` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

/// Runner metrics in the Prometheus text exposition (`run`, `bench`, `load`).
#[derive(Debug, Clone, Args)]
pub struct MetricsFlags {
    /// Write the runner's metrics (Prometheus/OpenMetrics text) to this file, rewritten
    /// atomically every --metrics-interval and at the end.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Serve the runner's metrics at http://ADDR/metrics while running (loopback only, e.g.
    /// 127.0.0.1:9464; port 0 picks a free one, printed on stderr).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub metrics_listen: Option<SocketAddr>,

    /// How often the metrics file is rewritten and the machine's CPU is read.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub metrics_interval: DurationSpec,
}

impl MetricsFlags {
    /// Whether an exposition was asked for.
    pub fn wanted(&self) -> bool {
        self.metrics_file.is_some() || self.metrics_listen.is_some()
    }
}

/// Output format of the commands that print a table, JSON or Markdown.
/// `--fail-on` (`compare`, `bench`): what makes the command exit with code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any benchmark's verdict is `regressed`.
    Regression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// `--progress` of `run`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Bars,
    Lines,
    None,
}

impl ProgressArg {
    /// The value of the configuration key `output.progress`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressArg::Auto => "auto",
            ProgressArg::Bars => "bars",
            ProgressArg::Lines => "lines",
            ProgressArg::None => "none",
        }
    }
}

/// `KEY=VALUE` of `--tag`.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    benchfleet::prom::loopback_addr(s).map_err(|e| e.to_string())
}

/// `1048576`, `512K`, `512M`, `2G`, `1.5G` (binary units) → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 512M or 2G"))?;
    let scale = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`; use K, M, G or T")),
    };
    let bytes = value * scale as f64;
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(bytes as u64)
}

/// `--noise` and `--alpha` (`compare`, `bisect`), checked, with bootstrap intervals.
pub fn compare_config(
    noise: f64,
    alpha: f64,
) -> crate::exit::Result<benchfleet::analysis::CompareConfig> {
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(crate::exit::CliError::Usage(format!(
            "--noise {noise}: expected a fraction ≥ 0, e.g. 0.02 for 2%"
        )));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(crate::exit::CliError::Usage(format!(
            "--alpha {alpha}: expected a probability between 0 and 1, e.g. 0.01"
        )));
    }
    Ok(benchfleet::analysis::CompareConfig {
        alpha,
        noise_threshold: noise,
        higher_is_better: false,
        bootstrap: Some(benchfleet::analysis::BootstrapConfig::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        exec: ExecFlags,
        #[command(flatten)]
        tags: TagFlags,
        #[command(flatten)]
        metrics: MetricsFlags,
    }

    fn parse(args: &[&str]) -> Result<T, String> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn execution_flags_set_their_configuration_keys() {
        let keys = |args: &[&str]| -> Vec<String> {
            parse(args)
                .unwrap()
                .exec
                .config_overrides()
                .into_iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect()
        };
        assert!(keys(&[]).is_empty());
        let set = keys(&["-j", "3", "--no-cache", "--fail-fast"]);
        assert_eq!(set.len(), 3, "{set:?}");
        assert!(set[0].starts_with("run.jobs="), "{set:?}");
        assert!(set[1].starts_with("run.keep_going="), "{set:?}");
        assert!(set[2].starts_with("run.cache="), "{set:?}");
        assert!(
            parse(&["--fail-fast", "--keep-going"]).is_err(),
            "--fail-fast conflicts with --keep-going"
        );
    }

    #[test]
    fn tags_are_key_value_pairs() {
        let t = parse(&["--tag", "branch=main", "--tag", " k =a=b"]).unwrap();
        assert_eq!(
            t.tags.tags,
            vec![
                ("branch".to_owned(), "main".to_owned()),
                ("k".to_owned(), "a=b".to_owned())
            ]
        );
        for bad in ["novalue", "=v"] {
            let e = parse(&["--tag", bad]).unwrap_err();
            assert!(e.contains("is not KEY=VALUE"), "{bad}: {e}");
        }
    }

    #[test]
    fn metrics_listen_refuses_non_loopback_addresses() {
        let ok = parse(&["--metrics-listen", "127.0.0.1:9464"]).unwrap();
        assert_eq!(
            ok.metrics.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert!(ok.metrics.wanted());
        assert_eq!(ok.metrics.metrics_interval.0, Duration::from_secs(1));
        assert!(!parse(&[]).unwrap().metrics.wanted());
        for bad in ["0.0.0.0:9464", "10.1.2.3:80", "nonsense"] {
            let e = parse(&["--metrics-listen", bad]).unwrap_err();
            assert!(
                e.contains("loopback") || e.contains("not an address"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        for (s, want) in [
            ("1024", Ok(1024)),
            ("4K", Ok(4096)),
            ("1.5G", Ok(3 << 29)),
            ("2MiB", Ok(2 << 20)),
        ] {
            assert_eq!(parse_size(s), want, "{s}");
        }
        for bad in ["", "x", "3Q", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
