//! Reading a suite file and expanding it into concrete nodes: matrices, placeholders, needs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use benchfleet_model::{CommandSpec, Defaults, MatrixValue, NodeKind, NodeSpec, SuiteFile};

use benchfleet_sched::Resources;

use crate::Error;

mod split;

/// How many measured runs a node gets (hyperfine's rules).
#[derive(Clone, Debug, PartialEq)]
pub struct RunPolicy {
    pub warmup: u32,
    /// Exactly this many runs, when set.
    pub runs: Option<u32>,
    pub min_runs: u32,
    pub max_runs: Option<u32>,
    /// Keep measuring until this much time was spent (bounded by `max_runs`).
    pub min_time: Duration,
}

impl RunPolicy {
    /// hyperfine's defaults for benchmarks: no warmup, at least 10 runs and at least 3 s.
    pub const BENCHMARK: RunPolicy = RunPolicy {
        warmup: 0,
        runs: None,
        min_runs: 10,
        max_runs: None,
        min_time: Duration::from_secs(3),
    };
    /// Jobs run once.
    pub const JOB: RunPolicy = RunPolicy {
        warmup: 0,
        runs: Some(1),
        min_runs: 1,
        max_runs: Some(1),
        min_time: Duration::ZERO,
    };

    /// Total measured runs, given the wall time of the first measured run.
    pub fn run_count(&self, first_run: Duration) -> u32 {
        if let Some(n) = self.runs {
            return n.max(1);
        }
        let per = first_run.as_secs_f64().max(1e-9);
        let by_time = (self.min_time.as_secs_f64() / per)
            .ceil()
            .min(u32::MAX as f64) as u32;
        let n = by_time.max(self.min_runs).max(1);
        self.max_runs.map_or(n, |m| n.min(m.max(1)))
    }
}

/// A concrete DAG node after expansion. Its size counts: a suite may hold 100,000 of them, so
/// what can be derived is (its command line, its output directory: [`Suite::node_out_dir`]) and
/// what most nodes leave unset is boxed.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique name after matrix expansion.
    pub name: String,
    pub kind: NodeKind,
    /// The program and its arguments, placeholders substituted (`SHELL`, `-c`, `LINE` when it
    /// runs through a shell).
    pub program: String,
    pub args: Vec<String>,
    pub parameters: BTreeMap<String, String>,
    /// Indexes (into [`Suite::nodes`]) of the nodes this one needs.
    pub needs: Vec<usize>,
    pub policy: RunPolicy,
    /// What the node occupies while it runs (admission against the host budget).
    pub resources: Resources,
    /// Whether a cached result may be reused.
    pub cache: bool,
    /// Whether nothing else of the suite may run while this node runs (`exclusive`; default:
    /// benchmarks yes, jobs no).
    pub exclusive: bool,
    /// Unmeasured commands around the runs (hyperfine's setup/prepare/conclude/cleanup); `None`
    /// when it has none.
    pub hooks: Option<Box<Hooks>>,
    /// Run under this load profile instead of `policy`'s runs (a `load` table).
    pub load: Option<Box<crate::loadgen::LoadPlan>>,
    /// Environment, directory, shell, timeout, retries and cache inputs; `None` when all are at
    /// their defaults (read them through [`Node::settings`]).
    pub settings: Option<Box<NodeSettings>>,
}

/// The settings of a node that most nodes leave at their defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSettings {
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Files and directories whose contents enter the cache key.
    pub inputs: Vec<PathBuf>,
    /// The shell the command runs through (`shell = …`, `SHELL -c COMMAND`); its spawn cost is
    /// measured once per run and subtracted from the measured times, like hyperfine.
    pub shell: Option<String>,
    /// Programs the node needs (`requires`, placeholders substituted): when one is not found
    /// ([`Node::missing_requirement`]) the node is skipped with the reason, not failed.
    pub requires: Vec<String>,
}

impl NodeSettings {
    const DEFAULT: NodeSettings = NodeSettings {
        env: BTreeMap::new(),
        cwd: None,
        timeout: None,
        retries: 0,
        inputs: Vec::new(),
        shell: None,
        requires: Vec::new(),
    };
}

/// A command ready to spawn, with the line it is displayed and recorded as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub line: String,
    pub program: String,
    pub args: Vec<String>,
}

/// A node's unmeasured commands, with its placeholders, shell, environment and directory.
/// `setup` runs once before the first run, `prepare` before every run (warmups too), `conclude`
/// after every run, `cleanup` once after the last run (also when a run failed). Boxed: most
/// nodes have none, and a node's size counts in a suite of 100,000.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    pub setup: Option<Box<Command>>,
    pub prepare: Option<Box<Command>>,
    pub conclude: Option<Box<Command>>,
    pub cleanup: Option<Box<Command>>,
}

impl Node {
    /// Its environment, directory, shell, timeout, retries and cache inputs.
    pub fn settings(&self) -> &NodeSettings {
        static DEFAULT: NodeSettings = NodeSettings::DEFAULT;
        self.settings.as_deref().unwrap_or(&DEFAULT)
    }

    /// Its settings, to change (boxed on first use).
    pub fn settings_mut(&mut self) -> &mut NodeSettings {
        self.settings.get_or_insert_with(Default::default)
    }

    /// The command as displayed and recorded (placeholders substituted): the line given to the
    /// shell, or the program and its arguments joined with shell quoting.
    pub fn command_line(&self) -> String {
        match (&self.settings().shell, self.args.as_slice()) {
            (Some(_), [_, line]) => line.clone(),
            _ => shell_words::join(std::iter::once(&self.program).chain(&self.args)),
        }
    }

    /// The first program of its `requires` that cannot be found, with the reason (`None` when
    /// every one is there). A name is looked up in the directories of `PATH` (the node's own
    /// `env.PATH` when it sets one) as an executable file; a value with a `/` is that file,
    /// relative to the node's `cwd` (or `base_dir`).
    pub fn missing_requirement(&self, base_dir: &Path) -> Option<MissingProgram> {
        let settings = self.settings();
        let path_var = settings
            .env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        settings.requires.iter().find_map(|program| {
            if program.contains('/') {
                let dir = match &settings.cwd {
                    Some(c) => base_dir.join(c),
                    None => base_dir.to_owned(),
                };
                let file = dir.join(program);
                (!is_executable(&file)).then(|| MissingProgram {
                    program: program.clone(),
                    reason: format!("requires `{program}`, which is not an executable file"),
                })
            } else {
                let found = std::env::split_paths(&path_var)
                    .filter(|d| !d.as_os_str().is_empty())
                    .any(|d| is_executable(&d.join(program)));
                (!found).then(|| MissingProgram {
                    program: program.clone(),
                    reason: format!("requires `{program}`, which is not on PATH"),
                })
            }
        })
    }

    /// Its unmeasured commands (none when `hooks` is `None`).
    pub fn hooks(&self) -> &Hooks {
        static NONE: Hooks = Hooks {
            setup: None,
            prepare: None,
            conclude: None,
            cleanup: None,
        };
        self.hooks.as_deref().unwrap_or(&NONE)
    }
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Each hook with its field name, in the order they first run.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Command)> {
        [
            ("setup", &self.setup),
            ("prepare", &self.prepare),
            ("conclude", &self.conclude),
            ("cleanup", &self.cleanup),
        ]
        .into_iter()
        .filter_map(|(k, c)| c.as_deref().map(|c| (k, c)))
    }
}

/// An expanded suite, ready to schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    /// The file it came from.
    pub source: PathBuf,
    /// Shared with the scheduler's tasks (never copied per run).
    pub nodes: Vec<Arc<Node>>,
    /// The suite's output directory (`<out_root>/<suite>`), holding one directory per node.
    pub out_dir: PathBuf,
}

impl Suite {
    /// `node`'s own output directory (`{out}`, `$BENCHFLEET_OUT`): derived from its name rather
    /// than kept in every node.
    pub fn node_out_dir(&self, node: &Node) -> PathBuf {
        node_out_dir(&self.out_dir, &node.name)
    }
}

impl Suite {
    /// This suite as it runs in a checkout at `dir` (a commit's worktree): `{worktree}` in
    /// commands, hooks, environment, `cwd` and `inputs` becomes `dir`, and every node's working
    /// directory is `dir` (or its own `cwd` under `dir`). Nothing else changes.
    pub fn in_worktree(&self, dir: &Path) -> Suite {
        let place = dir.display().to_string();
        let sub = |s: &str| s.replace(WORKTREE, &place);
        let sub_all = |v: &[String]| v.iter().map(|a| sub(a)).collect::<Vec<_>>();
        let mut suite = self.clone();
        for node in &mut suite.nodes {
            let n = Arc::make_mut(node);
            // The command line is derived from these, so it follows.
            n.program = sub(&n.program);
            n.args = sub_all(&n.args);
            let settings = n.settings_mut();
            for v in settings.env.values_mut() {
                *v = sub(v);
            }
            settings.cwd = Some(match &settings.cwd {
                Some(c) => dir.join(sub(&c.display().to_string())),
                None => dir.to_owned(),
            });
            settings.inputs = settings
                .inputs
                .iter()
                .map(|i| PathBuf::from(sub(&i.display().to_string())))
                .collect();
            if let Some(hooks) = &mut n.hooks {
                for c in [
                    &mut hooks.setup,
                    &mut hooks.prepare,
                    &mut hooks.conclude,
                    &mut hooks.cleanup,
                ]
                .into_iter()
                .flatten()
                {
                    c.line = sub(&c.line);
                    c.program = sub(&c.program);
                    c.args = sub_all(&c.args);
                }
            }
        }
        suite
    }

    /// The names of the benchmarks (after expansion), in suite order.
    pub fn benchmark_names(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Benchmark)
            .map(|n| n.name.as_str())
            .collect()
    }

    /// The nodes that cannot run here because a program in their `requires` is missing
    /// ([`Node::missing_requirement`]), and every node that needs one of them (transitively),
    /// each with the reason, in suite order; and the suite without them (`None` when every node
    /// can run). A missing tool is not a failure: these nodes are reported skipped.
    pub fn unavailable(&self, base_dir: &Path) -> (Option<Suite>, Unavailable) {
        let mut missing = std::collections::BTreeSet::new();
        let mut reason: Vec<Option<String>> = self
            .nodes
            .iter()
            .map(|n| {
                if n.settings().requires.is_empty() {
                    return None;
                }
                let m = n.missing_requirement(base_dir)?;
                missing.insert(m.program);
                Some(m.reason)
            })
            .collect();
        if missing.is_empty() {
            return (None, Unavailable::default());
        }
        // Dependents, breadth first from every unavailable node.
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &d in &n.needs {
                dependents[d].push(i);
            }
        }
        let mut queue: std::collections::VecDeque<usize> = (0..self.nodes.len())
            .filter(|&i| reason[i].is_some())
            .collect();
        while let Some(i) = queue.pop_front() {
            for &d in &dependents[i] {
                if reason[d].is_none() {
                    reason[d] = Some(format!("needs `{}`, which is skipped", self.nodes[i].name));
                    queue.push_back(d);
                }
            }
        }
        let keep: Vec<bool> = reason.iter().map(Option::is_none).collect();
        let nodes = self
            .nodes
            .iter()
            .zip(reason)
            .filter_map(|(n, r)| r.map(|r| (n.clone(), r)))
            .collect();
        (Some(self.keeping(&keep)), Unavailable { nodes, missing })
    }

    /// Only the node named `name` and the nodes it needs (transitively), with their `needs`
    /// renumbered; `None` when no node has that name.
    pub fn only(&self, name: &str) -> Option<Suite> {
        let target = self.nodes.iter().position(|n| n.name == name)?;
        let mut keep = vec![false; self.nodes.len()];
        let mut stack = vec![target];
        while let Some(i) = stack.pop() {
            if !keep[i] {
                keep[i] = true;
                stack.extend(self.nodes[i].needs.iter().copied());
            }
        }
        Some(self.keeping(&keep))
    }

    /// The nodes whose `keep` is true, with their `needs` renumbered (every node kept must keep
    /// the nodes it needs).
    fn keeping(&self, keep: &[bool]) -> Suite {
        let mut index = vec![usize::MAX; self.nodes.len()];
        let mut kept = 0;
        for (i, k) in keep.iter().enumerate() {
            if *k {
                index[i] = kept;
                kept += 1;
            }
        }
        let nodes = self
            .nodes
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(node, _)| {
                let mut n = (**node).clone();
                n.needs = n.needs.iter().map(|&d| index[d]).collect();
                Arc::new(n)
            })
            .collect();
        Suite {
            nodes,
            name: self.name.clone(),
            description: self.description.clone(),
            source: self.source.clone(),
            out_dir: self.out_dir.clone(),
        }
    }
}

/// A program of a node's `requires` that was not found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingProgram {
    /// As written in `requires` (placeholders substituted).
    pub program: String,
    /// Why the node cannot run: "requires `jj`, which is not on PATH".
    pub reason: String,
}

/// The nodes of a suite that cannot run on this machine ([`Suite::unavailable`]).
#[derive(Clone, Debug, Default)]
pub struct Unavailable {
    /// Each node left out, with the reason, in suite order.
    pub nodes: Vec<(Arc<Node>, String)>,
    /// The required programs that were not found.
    pub missing: std::collections::BTreeSet<String>,
}

/// Whether `file` is a regular file (or a link to one) with an execute bit.
fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A `requires` value after substitution: a program name or a path, nothing a lookup could
/// misread.
fn check_requirement(program: &str) -> Result<(), String> {
    if program.trim().is_empty() {
        return Err("is empty; name a program (`jj`) or give its path".into());
    }
    if program.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "contains whitespace; name one program (`jj`) per value, without arguments".into(),
        );
    }
    Ok(())
}

/// The placeholder of the checkout a suite runs in with `run --commits` and `bisect`.
pub const WORKTREE: &str = "{worktree}";

/// The output directory of the node named `name` in the suite output directory `suite_dir`.
pub(crate) fn node_out_dir(suite_dir: &Path, name: &str) -> PathBuf {
    suite_dir.join(sanitize(name))
}

/// Read and expand a suite file. `out_root` is where node output directories live
/// (`<out_root>/<suite>/<node>`).
pub fn load(path: &Path, out_root: &Path) -> Result<Suite, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::SuiteIo {
        path: path.to_owned(),
        source: e,
    })?;
    let tables = split::parse(path, &text)?;
    expand_tables(&tables, path, out_root)
}

/// Expand a suite file's `text`, read earlier from `path` (named in messages; a fleet worker
/// gets the text from the queue).
pub fn load_text(text: &str, path: &Path, out_root: &Path) -> Result<Suite, Error> {
    let tables = split::parse(path, text)?;
    expand_tables(&tables, path, out_root)
}

/// `text` starts on line `first_line` + 1 of the file (it may be one node's table of it).
fn suite_parse_error(path: &Path, text: &str, e: toml::de::Error, first_line: usize) -> Error {
    let Some(span) = e.span() else {
        return Error::Suite {
            path: path.to_owned(),
            line: 0,
            col: 0,
            message: e.message().to_owned(),
        };
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = first_line + before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = start - line_start + 1;
    // Quote the offending line so that the key is named even when the parser's message is not.
    let source_line = text[line_start..].lines().next().unwrap_or_default().trim();
    let message = if source_line.is_empty() {
        e.message().to_owned()
    } else {
        format!("{} (at `{source_line}`)", e.message())
    };
    Error::Suite {
        path: path.to_owned(),
        line,
        col,
        message,
    }
}

fn invalid(path: &Path, message: String) -> Error {
    Error::Suite {
        path: path.to_owned(),
        line: 0,
        col: 0,
        message,
    }
}

/// The most nodes a suite may expand into unless its `[suite] max_nodes` says otherwise.
pub const DEFAULT_MAX_NODES: u64 = 1_000_000;

/// Expand a parsed suite file. A suite that would expand into more than its `max_nodes` (default
/// [`DEFAULT_MAX_NODES`]) is [`Error::SuiteTooLarge`], before anything is expanded.
pub fn expand(file: &SuiteFile, source: &Path, out_root: &Path) -> Result<Suite, Error> {
    expand_tables(file, source, out_root)
}

/// What expansion reads first of every node table: its name and matrix. The rest of a table is
/// read when its nodes are built, one table at a time.
#[derive(Clone, Debug, serde::Deserialize)]
struct Head {
    name: String,
    #[serde(default)]
    matrix: BTreeMap<String, Vec<MatrixValue>>,
}

/// A suite's node tables in expansion order (every `[[job]]`, then every `[[benchmark]]`): a
/// parsed [`SuiteFile`], or a file's text read one node table at a time.
trait NodeTables {
    /// `[suite]` and `[defaults]` (and, for a parsed file, its nodes).
    fn file(&self) -> &SuiteFile;
    fn count(&self) -> usize;
    fn kind(&self, i: usize) -> NodeKind;
    fn head(&self, i: usize) -> Result<Head, Error>;
    fn spec(&self, i: usize) -> Result<std::borrow::Cow<'_, NodeSpec>, Error>;
}

impl NodeTables for SuiteFile {
    fn file(&self) -> &SuiteFile {
        self
    }
    fn count(&self) -> usize {
        self.job.len() + self.benchmark.len()
    }
    fn kind(&self, i: usize) -> NodeKind {
        if i < self.job.len() {
            NodeKind::Job
        } else {
            NodeKind::Benchmark
        }
    }
    fn head(&self, i: usize) -> Result<Head, Error> {
        let spec = self.spec(i)?;
        Ok(Head {
            name: spec.name.clone(),
            matrix: spec.matrix.clone(),
        })
    }
    fn spec(&self, i: usize) -> Result<std::borrow::Cow<'_, NodeSpec>, Error> {
        let spec = match i.checked_sub(self.job.len()) {
            None => &self.job[i],
            Some(b) => &self.benchmark[b],
        };
        Ok(std::borrow::Cow::Borrowed(spec))
    }
}

fn expand_tables(tables: &impl NodeTables, source: &Path, out_root: &Path) -> Result<Suite, Error> {
    let file = tables.file();
    let suite_name = file.suite.name.trim();
    if suite_name.is_empty() {
        return Err(invalid(
            source,
            "`suite.name` is empty; give the suite a name".into(),
        ));
    }
    // Collected with their exact capacity: this and the tables below are the peak of loading a
    // large suite, so none of them is grown by doubling.
    let mut heads = Vec::with_capacity(tables.count());
    for i in 0..tables.count() {
        heads.push((tables.head(i)?, tables.kind(i)));
    }
    let node_count = check_size(&heads, file.suite.max_nodes, source)?;
    let suite_dir = out_root.join(sanitize(suite_name));

    struct Pending<'a> {
        /// Index of its node table (in `heads`).
        table: usize,
        kind: NodeKind,
        base: &'a str,
        params: BTreeMap<String, String>,
        name: String,
    }
    let mut pending = Vec::with_capacity(node_count);
    // Each base name's kind and its expansions (a table's expansions are consecutive in
    // `pending`), so resolving a `needs` entry looks at that node's expansions only (a scan of
    // every node per dependency made loading a 10,000-node suite quadratic).
    let mut bases: HashMap<&str, std::ops::Range<usize>> = HashMap::with_capacity(heads.len());
    for (table, (spec, kind)) in heads.iter().enumerate() {
        let kind = *kind;
        let what = format!("{} `{}`", kind.as_str(), spec.name);
        if spec.name.trim().is_empty() {
            return Err(invalid(
                source,
                format!("a [[{}]] has an empty `name`", kind.as_str()),
            ));
        }
        if bases
            .insert(&spec.name, pending.len()..pending.len())
            .is_some()
        {
            return Err(invalid(
                source,
                format!("two nodes are named `{}`; names must be unique", spec.name),
            ));
        }
        for (k, values) in &spec.matrix {
            if values.is_empty() {
                return Err(invalid(
                    source,
                    format!("{what}: matrix key `{k}` has no values"),
                ));
            }
            if !is_ident(k) || k == "out" {
                return Err(invalid(
                    source,
                    format!("{what}: matrix key `{k}` must be a plain identifier other than `out`"),
                ));
            }
        }
        for params in cross_product(&spec.matrix) {
            let name = if params.is_empty() {
                spec.name.clone()
            } else if spec.name.contains('{') {
                substitute(&spec.name, &params, None)
            } else {
                let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{}[{}]", spec.name, p.join(","))
            };
            pending.push(Pending {
                table,
                kind,
                base: &spec.name,
                params,
                name,
            });
        }
        if let Some(expansions) = bases.get_mut(spec.name.as_str()) {
            expansions.end = pending.len();
        }
    }

    // Unique expanded names.
    let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(pending.len());
    for (i, p) in pending.iter().enumerate() {
        if let Some(j) = by_name.insert(&p.name, i) {
            return Err(invalid(
                source,
                format!(
                    "nodes `{}` and `{}` both expand to `{}`; put every matrix key in the name, e.g. `{}-{{{}}}`",
                    pending[j].base,
                    p.base,
                    p.name,
                    p.base,
                    p.params.keys().next().map(String::as_str).unwrap_or("key")
                ),
            ));
        }
    }

    let mut nodes = Vec::with_capacity(pending.len());
    // The node table being built (a matrix builds several nodes from one), read once.
    let mut current: Option<(usize, std::borrow::Cow<'_, NodeSpec>)> = None;
    for p in &pending {
        if current.as_ref().is_none_or(|(t, _)| *t != p.table) {
            current = Some((p.table, tables.spec(p.table)?));
        }
        let spec: &NodeSpec = &current.as_ref().expect("read above").1;
        let what = format!("{} `{}`", p.kind.as_str(), p.name);
        // Resolve needs: a base name (all its expansions whose shared parameters agree with ours)
        // or an exact expanded name.
        let mut needs = Vec::new();
        let mut out_of: BTreeMap<String, PathBuf> = BTreeMap::new();
        for need in &spec.needs {
            let matches: Vec<usize> = if let Some(expansions) = bases.get(need.as_str()) {
                expansions
                    .clone()
                    .filter(|&i| {
                        pending[i]
                            .params
                            .iter()
                            .all(|(k, v)| p.params.get(k).is_none_or(|mine| mine == v))
                    })
                    .collect()
            } else if let Some(&i) = by_name.get(substitute(need, &p.params, None).as_str()) {
                // An exact expanded name, possibly written with this node's placeholders.
                vec![i]
            } else {
                let known: Vec<&str> = bases.keys().copied().collect();
                return Err(invalid(
                    source,
                    format!(
                        "{what} needs `{need}`, which is not a job or benchmark in this suite (known: {})",
                        sorted(known)
                    ),
                ));
            };
            if matches.is_empty() {
                return Err(invalid(
                    source,
                    format!(
                        "{what} needs `{need}`, but no expansion of it has matching parameters"
                    ),
                ));
            }
            if matches.len() == 1 {
                out_of.insert(
                    need.clone(),
                    node_out_dir(&suite_dir, &pending[matches[0]].name),
                );
            }
            needs.extend(matches);
        }
        needs.sort_unstable();
        needs.dedup();

        let out_dir = node_out_dir(&suite_dir, &p.name);
        let subst = |text: &str| -> Result<String, Error> {
            check_out_refs(text, &spec.needs, &out_of)
                .map_err(|m| invalid(source, format!("{what}: {m}")))?;
            Ok(substitute(text, &p.params, Some((&out_dir, &out_of))))
        };
        let shell = spec.shell.clone().or_else(|| file.defaults.shell.clone());
        let build = |spec: &CommandSpec, field: &str| -> Result<Command, Error> {
            let what = if field == "command" {
                what.clone()
            } else {
                format!("{what} `{field}`")
            };
            let (line, program, args) = match (spec, &shell) {
                (CommandSpec::Line(line), Some(sh)) => {
                    let line = subst(line)?;
                    (line.clone(), sh.clone(), vec!["-c".to_owned(), line])
                }
                (CommandSpec::Line(line), None) => {
                    let words = shell_words::split(line).map_err(|e| {
                        invalid(source, format!("{what}: cannot split command {line:?} into words: {e}; check the quotes, or set `shell = \"sh\"`"))
                    })?;
                    let words = words
                        .iter()
                        .map(|w| subst(w))
                        .collect::<Result<Vec<_>, _>>()?;
                    split_program(&what, source, words)?
                }
                (CommandSpec::Argv(argv), None) => {
                    let words = argv
                        .iter()
                        .map(|w| subst(w))
                        .collect::<Result<Vec<_>, _>>()?;
                    split_program(&what, source, words)?
                }
                (CommandSpec::Argv(argv), Some(sh)) => {
                    let words = argv
                        .iter()
                        .map(|w| subst(w))
                        .collect::<Result<Vec<_>, _>>()?;
                    let line = shell_words::join(&words);
                    (line.clone(), sh.clone(), vec!["-c".to_owned(), line])
                }
            };
            Ok(Command {
                line,
                program,
                args,
            })
        };
        let Command {
            line: command,
            program,
            args,
        } = build(&spec.command, "command")?;
        let hook = |own: &Option<CommandSpec>, default: &Option<CommandSpec>, field: &str| {
            own.as_ref()
                .or(default.as_ref())
                .map(|c| build(c, field))
                .transpose()
        };
        let d = &file.defaults;
        let hooks = Hooks {
            setup: hook(&spec.setup, &d.setup, "setup")?.map(Box::new),
            prepare: hook(&spec.prepare, &d.prepare, "prepare")?.map(Box::new),
            conclude: hook(&spec.conclude, &d.conclude, "conclude")?.map(Box::new),
            cleanup: hook(&spec.cleanup, &d.cleanup, "cleanup")?.map(Box::new),
        };
        let mut env = file.defaults.env.clone();
        for (k, v) in &spec.env {
            env.insert(k.clone(), subst(v)?);
        }
        let cwd = spec
            .cwd
            .as_ref()
            .or(file.defaults.cwd.as_ref())
            .map(|c| subst(c).map(PathBuf::from))
            .transpose()?;
        let load =
            load_for(p.kind, spec, &hooks).map_err(|m| invalid(source, format!("{what}: {m}")))?;
        let policy = if load.is_some() {
            // Run controls, including those of [defaults], do not apply to a load.
            RunPolicy {
                warmup: 0,
                ..RunPolicy::BENCHMARK
            }
        } else {
            policy_for(p.kind, spec, &file.defaults, &what, source)?
        };
        let resources = resources_for(spec, &file.defaults)
            .map_err(|m| invalid(source, format!("{what}: {m}")))?;
        let inputs = spec
            .inputs
            .iter()
            .map(|i| subst(i).map(PathBuf::from))
            .collect::<Result<Vec<_>, _>>()?;
        let requires = spec
            .requires
            .iter()
            .map(|r| {
                let program = subst(r)?;
                check_requirement(&program)
                    .map_err(|m| invalid(source, format!("{what}: `requires` value {r:?}: {m}")))?;
                Ok(program)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let settings = NodeSettings {
            env,
            cwd,
            timeout: spec.timeout.or(file.defaults.timeout).map(|d| d.0),
            retries: spec.retries.or(file.defaults.retries).unwrap_or(0),
            inputs,
            shell: shell.clone(),
            requires,
        };
        let node = Node {
            name: p.name.clone(),
            kind: p.kind,
            program,
            args,
            parameters: p.params.clone(),
            needs,
            policy,
            resources,
            cache: spec.cache.or(file.defaults.cache).unwrap_or(true),
            // Benchmarks are measured alone unless they (or `[defaults]`) opt in to sharing;
            // jobs share unless they set `exclusive = true` themselves.
            exclusive: match p.kind {
                NodeKind::Benchmark => spec.exclusive.or(file.defaults.exclusive).unwrap_or(true),
                NodeKind::Job => spec.exclusive.unwrap_or(false),
            },
            hooks: (!hooks.is_empty()).then(|| Box::new(hooks)),
            load: load.map(Box::new),
            settings: (settings != NodeSettings::DEFAULT).then(|| Box::new(settings)),
        };
        debug_assert_eq!(node.command_line(), command, "a node's line is derivable");
        nodes.push(Arc::new(node));
    }
    if nodes.is_empty() {
        return Err(invalid(
            source,
            "the suite has no [[job]] or [[benchmark]]; add at least one".into(),
        ));
    }
    Ok(Suite {
        name: suite_name.to_owned(),
        description: file.suite.description.clone(),
        source: source.to_owned(),
        nodes,
        out_dir: suite_dir,
    })
}

/// A node's `load` table, checked and resolved; `Err` names the key and says what to do.
fn load_for(
    kind: NodeKind,
    spec: &NodeSpec,
    hooks: &Hooks,
) -> Result<Option<crate::loadgen::LoadPlan>, String> {
    let Some(table) = &spec.load else {
        return Ok(None);
    };
    if kind == NodeKind::Job {
        return Err(
            "`load` is for [[benchmark]] nodes; a [[job]] runs once (make it a [[benchmark]])"
                .into(),
        );
    }
    let own_controls = [
        ("runs", spec.runs.is_some()),
        ("min_runs", spec.min_runs.is_some()),
        ("max_runs", spec.max_runs.is_some()),
        ("min_time", spec.min_time.is_some()),
        ("warmup", spec.warmup.is_some()),
    ];
    if let Some((key, _)) = own_controls.iter().find(|(_, set)| *set) {
        return Err(format!(
            "`{key}` cannot be combined with `load`: a load runs for its profile's duration, not a number of runs; remove `{key}`"
        ));
    }
    for (field, c) in [("prepare", &hooks.prepare), ("conclude", &hooks.conclude)] {
        if c.is_some() {
            let whence = if field == "prepare" && spec.prepare.is_some()
                || field == "conclude" && spec.conclude.is_some()
            {
                ""
            } else {
                " (inherited from [defaults])"
            };
            return Err(format!(
                "`{field}`{whence} cannot be combined with `load`: it runs around every run, and the runs of a load overlap; use `setup` / `cleanup`, which run once around the whole load"
            ));
        }
    }
    crate::loadgen::plan(table, crate::loadgen::MissingDuration::Refuse)
        .map(Some)
        .map_err(|e| crate::loadgen::in_table_terms(&e.to_string()))
}

/// A profile and/or explicit `cpus` / `memory`; explicit values override the profile's.
fn resources_for(spec: &NodeSpec, d: &Defaults) -> Result<Resources, String> {
    let profile = spec.resources.as_ref().or(d.resources.as_ref());
    let base = match profile {
        Some(name) => Resources::profile(name)
            .map_err(|e| format!("{e}; profiles are micro, small, medium, large, xlarge"))?,
        None => Resources::ZERO,
    };
    let cpus = spec.cpus.or(d.cpus);
    let memory = spec.memory.or(d.memory).map(|m| m.0);
    match (cpus, memory) {
        (None, None) => Ok(base),
        (c, m) => Resources::from_cpus(c.unwrap_or(base.cpus()), m.unwrap_or(base.memory_bytes))
            .map_err(|e| e.to_string()),
    }
}

fn policy_for(
    kind: NodeKind,
    spec: &NodeSpec,
    d: &Defaults,
    what: &str,
    source: &Path,
) -> Result<RunPolicy, Error> {
    let base = match kind {
        NodeKind::Benchmark => RunPolicy::BENCHMARK,
        NodeKind::Job => RunPolicy::JOB,
    };
    // Jobs run once unless the node itself asks for more; suite defaults apply to benchmarks.
    let inherit = kind == NodeKind::Benchmark;
    let pick = |own: Option<u32>, def: Option<u32>| own.or(if inherit { def } else { None });
    let policy = RunPolicy {
        warmup: pick(spec.warmup, d.warmup).unwrap_or(base.warmup),
        runs: pick(spec.runs, d.runs).or(base.runs),
        min_runs: pick(spec.min_runs, d.min_runs).unwrap_or(base.min_runs),
        max_runs: pick(spec.max_runs, d.max_runs).or(base.max_runs),
        min_time: spec
            .min_time
            .or(if inherit { d.min_time } else { None })
            .map_or(base.min_time, |t| t.0),
    };
    if policy.runs == Some(0) {
        return Err(invalid(
            source,
            format!("{what}: `runs` must be at least 1"),
        ));
    }
    if let Some(max) = policy.max_runs
        && max < policy.min_runs
        && policy.runs.is_none()
    {
        return Err(invalid(
            source,
            format!(
                "{what}: `max_runs` ({max}) is smaller than `min_runs` ({}); raise max_runs or lower min_runs",
                policy.min_runs
            ),
        ));
    }
    Ok(policy)
}

fn split_program(
    what: &str,
    source: &Path,
    mut words: Vec<String>,
) -> Result<(String, String, Vec<String>), Error> {
    if words.is_empty() || words[0].is_empty() {
        return Err(invalid(source, format!("{what}: `command` is empty")));
    }
    let line = shell_words::join(&words);
    // Split off exactly: a vector grown while collecting keeps room for four words.
    let args = words.split_off(1);
    let program = words.pop().unwrap_or_default();
    Ok((line, program, args))
}

/// Refuses a suite that expands into more nodes than its limit, or returns how many nodes it
/// expands into. The count is computed from the matrix sizes alone (each node's product of its
/// keys' numbers of values, summed over the nodes), in checked arithmetic, so nothing is
/// allocated per node and an overflow is refused too.
fn check_size(
    heads: &[(Head, NodeKind)],
    max_nodes: Option<u64>,
    source: &Path,
) -> Result<usize, Error> {
    let limit = max_nodes.unwrap_or(DEFAULT_MAX_NODES);
    // `None` stands for "more than u64::MAX".
    let mut total = Some(0u64);
    let mut largest: Option<(&Head, NodeKind, Option<u64>)> = None;
    for (spec, kind) in heads {
        let kind = *kind;
        let count = spec
            .matrix
            .values()
            .try_fold(1u64, |n, values| n.checked_mul(values.len() as u64));
        total = total.zip(count).and_then(|(t, n)| t.checked_add(n));
        let larger = match (largest, count) {
            (None, _) | (Some((_, _, Some(_))), None) => true,
            (Some((_, _, Some(max))), Some(n)) => n > max,
            (Some((_, _, None)), _) => false,
        };
        if larger {
            largest = Some((spec, kind, count));
        }
    }
    if let Some(t) = total.filter(|&t| t <= limit) {
        return Ok(usize::try_from(t).unwrap_or(usize::MAX));
    }
    let (spec, kind, node_count) = largest.expect("a suite over any limit has a node");
    Err(Error::SuiteTooLarge {
        path: source.to_owned(),
        node: format!("{} `{}`", kind.as_str(), spec.name),
        matrix: spec
            .matrix
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect(),
        node_count,
        count: total,
        limit,
    })
}

/// All combinations of matrix values, in a stable order (keys sorted, values as written).
fn cross_product(
    matrix: &BTreeMap<String, Vec<benchfleet_model::MatrixValue>>,
) -> Vec<BTreeMap<String, String>> {
    let mut out = vec![BTreeMap::new()];
    for (k, values) in matrix {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for combo in &out {
            for v in values {
                let mut c = combo.clone();
                c.insert(k.clone(), v.to_string());
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// Replace `{key}` with parameter values, `{out}` with the node's output directory and
/// `{out.NAME}` with the output directory of needed node NAME. Other braces are left alone
/// (as hyperfine does), so `awk '{print $1}'` works unchanged.
fn substitute(
    text: &str,
    params: &BTreeMap<String, String>,
    outs: Option<(&Path, &BTreeMap<String, PathBuf>)>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = closing_brace(after) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after[..end];
        let replacement = match (key, outs) {
            ("out", Some((own, _))) => Some(own.display().to_string()),
            (k, Some((_, others))) if k.starts_with("out.") => {
                others.get(&k[4..]).map(|p| p.display().to_string())
            }
            (k, _) => params.get(k).cloned(),
        };
        match replacement {
            Some(r) => {
                out.push_str(&r);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The index of the `}` closing a placeholder whose `{` came just before `s`, allowing nested
/// braces (`{out.gen-{size}}`).
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `{out.NAME}` must name a node listed in `needs` that resolves to a single expansion.
fn check_out_refs(
    text: &str,
    needs: &[String],
    resolved: &BTreeMap<String, PathBuf>,
) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find("{out.") {
        let after = &rest[i + 5..];
        let Some(end) = closing_brace(after) else {
            break;
        };
        let name = &after[..end];
        if !needs.iter().any(|n| n == name) {
            return Err(format!(
                "`{{out.{name}}}` refers to `{name}`, which is not in `needs`; add it to `needs`"
            ));
        }
        if !resolved.contains_key(name) {
            return Err(format!(
                "`{{out.{name}}}` is ambiguous: `{name}` expands to several nodes; give both the same matrix key so they pair up, or name one expansion in `needs`"
            ));
        }
        rest = &after[end..];
    }
    Ok(())
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A name made safe for a single path component.
/// Never `.`, `..` or hidden: a leading dot becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| match c {
            '.' if i == 0 => '_',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=' | ',') => c,
            _ => '_',
        })
        .collect()
}

fn sorted(mut v: Vec<&str>) -> String {
    v.sort_unstable();
    v.join(", ")
}

#[cfg(test)]
mod tests;
