//! The module-cycle tidy check: the top-level modules of a crate must not import each other in a
//! cycle, so that every crate reads bottom-up (see `ARCHITECTURE.md`).
//!
//! For every lib and bin target of the workspace (from `cargo metadata`), the crate root
//! (`lib.rs`, `main.rs`, `src/bin/x.rs`) is parsed with `syn`, and so is every module file it
//! declares. The nodes of a crate's graph are its **top-level modules**: the `mod x;` (or inline
//! `mod x { … }`) items of the root. A module's submodules, its `x/…` files and its test code
//! (`#[cfg(test)] mod tests`, `x/tests.rs`) belong to it. There is an edge `x -> y` when code in
//! `x` names something in `y`:
//!
//! - a path starting with `crate::y` (in `use` items, grouped ones such as
//!   `use crate::{a, b::c}` included, and in types, expressions, patterns, trait bounds), or with
//!   `super::…`/`self::…` that resolves to `y`;
//! - a path through the crate root's re-exports: `crate::Dag` counts as an edge to the module that
//!   the root's `pub use dag::Dag` names (a root `pub use y::*` is followed through the items `y`
//!   declares at its top level);
//! - the same paths inside macro invocations (`format!`, `assert!`, `vec!`, `macro_rules!` bodies
//!   with `$crate::y`), read from their tokens.
//!
//! Comments, string literals and doc comments (hence intra-doc links such as ``[`crate::run`]``)
//! do not count: a doc link is not a dependency, and rustdoc resolves it wherever it points.
//! Items defined in the crate root itself are nobody's module, so they make no edge, and a glob of
//! the whole root (`use super::*` in a top-level module) names nothing in particular and makes no
//! edge either. `pub(in crate::x)` visibilities are not references.
//!
//! Test code counts like any other code: a `#[cfg(test)]` module is part of its parent, and a test
//! that reaches into a sibling module is a real dependency of the module it tests. (No crate needs
//! an exception today; if one ever does, the witness says which file to look at.)
//!
//! Every cycle is reported as a chain, `crate: a -> b -> a`, each edge with the `file:line` of
//! its first reference. Each edge that lies on a cycle appears in one shortest cycle through it,
//! so the report lists every edge to cut, without enumerating the exponentially many cycles of a
//! tangled crate.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cargo_metadata::MetadataCommand;
use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// Where a reference from one top-level module to another was seen. Of several, an edge keeps
/// the first in this order: outside test code first, then by file and line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Witness {
    /// In `#[cfg(test)]` or `#[test]` code.
    pub test: bool,
    pub file: PathBuf,
    pub line: usize,
}

/// The edges between the top-level modules of one crate: `from -> to -> first reference`.
pub type Graph = BTreeMap<String, BTreeMap<String, Witness>>;

/// A cycle of top-level modules, `[a, b, c]` for `a -> b -> c -> a`, starting at its smallest name.
pub type Cycle = Vec<String>;

/// What the workspace check found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Crate targets (libs and bins) checked.
    pub checked: usize,
}

/// Check every lib and bin target of the workspace. Fails with the rendered cycles of every
/// crate that has some.
pub fn check_workspace() -> Result<Outcome> {
    let meta = MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata failed")?;
    let root = meta.workspace_root.as_std_path();
    let mut outcome = Outcome::default();
    let mut failures = Vec::new();
    for package in &meta.packages {
        for target in &package.targets {
            if !(target.is_lib() || target.is_bin() || target.is_proc_macro()) {
                continue;
            }
            let label = if target.is_bin() && target.name != *package.name {
                format!("{} (bin {})", package.name, target.name)
            } else {
                package.name.to_string()
            };
            let graph = module_graph(target.src_path.as_std_path(), &|p| {
                std::fs::read_to_string(p)
            })
            .with_context(|| format!("reading the modules of {label}"))?;
            outcome.checked += 1;
            let found = cycles(&graph);
            if found.is_empty() {
                continue;
            }
            failures.push(render(&label, &graph, &found, root));
        }
    }
    if !failures.is_empty() {
        bail!(
            "top-level modules import each other in a cycle (move what both need into a module \
             of its own, or to the side that owns it):\n{}",
            failures.join("\n")
        );
    }
    Ok(outcome)
}

/// The edges between the top-level modules of the crate whose root file is `root`, reading files
/// with `read` (the real file system, or an in-memory crate in tests).
pub fn module_graph(root: &Path, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Result<Graph> {
    let file = parse(root, read)?;
    let dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut modules = Vec::new();
    for item in &file.items {
        if let syn::Item::Mod(m) = item {
            let loaded = load_module(m, root, &dir, false, read)?;
            modules.push((m.ident.to_string(), is_test(&m.attrs), loaded));
        }
    }
    let names = root_names(&file.items, &modules);
    let mut graph = Graph::new();
    for (name, test, module) in &modules {
        let mut refs = Refs {
            top: name,
            names: &names,
            read,
            modpath: vec![name.clone()],
            file: module.file.clone(),
            child_dir: module.child_dir.clone(),
            inline: module.inline,
            in_test: usize::from(*test),
            edges: BTreeMap::new(),
            error: None,
        };
        for item in &module.items {
            refs.visit_item(item);
        }
        if let Some(e) = refs.error {
            return Err(e);
        }
        graph.insert(name.clone(), refs.edges);
    }
    Ok(graph)
}

/// Every cycle of `graph`: for each edge on a cycle, one shortest cycle through it; deduplicated,
/// each rotated to start at its smallest module, sorted.
pub fn cycles(graph: &Graph) -> Vec<Cycle> {
    let mut out = BTreeSet::new();
    for (from, edges) in graph {
        for to in edges.keys() {
            if let Some(back) = shortest_path(graph, to, from) {
                // back = [to, …, from]; the cycle is from -> to -> … -> from.
                let mut cycle: Cycle = std::iter::once(from.clone())
                    .chain(back.into_iter().take_while(|m| m != from))
                    .collect();
                let smallest = (0..cycle.len()).min_by_key(|&i| &cycle[i]).unwrap_or(0);
                cycle.rotate_left(smallest);
                out.insert(cycle);
            }
        }
    }
    out.into_iter().collect()
}

/// The cycles of one crate as text: a chain per cycle, then the witness of each of its edges.
pub fn render(krate: &str, graph: &Graph, cycles: &[Cycle], root: &Path) -> String {
    let mut out = String::new();
    for cycle in cycles {
        let chain: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(String::as_str)
            .collect();
        out.push_str(&format!("  {krate}: {}\n", chain.join(" -> ")));
        for pair in chain.windows(2) {
            if let Some(w) = graph.get(pair[0]).and_then(|e| e.get(pair[1])) {
                let file = w.file.strip_prefix(root).unwrap_or(&w.file);
                out.push_str(&format!(
                    "      {} -> {}: {}:{}{}\n",
                    pair[0],
                    pair[1],
                    file.display(),
                    w.line,
                    if w.test { " (test code only)" } else { "" }
                ));
            }
        }
    }
    out
}

fn shortest_path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![to.to_string()];
            let mut cur = to;
            while let Some(p) = prev.get(cur) {
                path.push(p.to_string());
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(at).into_iter().flat_map(|e| e.keys()) {
            if seen.insert(next) {
                prev.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    None
}

fn parse(path: &Path, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Result<syn::File> {
    let text = read(path).with_context(|| format!("cannot read {}", path.display()))?;
    syn::parse_file(&text).map_err(|e| {
        let at = e.span().start();
        anyhow!("{}:{}:{}: {e}", path.display(), at.line, at.column + 1)
    })
}

/// A module's own items, where they were read from, and where its `mod y;` files live.
struct Module {
    items: Vec<syn::Item>,
    file: PathBuf,
    child_dir: PathBuf,
    /// Declared inline (`mod x { … }`): a `#[path]` inside is relative to `child_dir`.
    inline: bool,
}

/// Loads the module declared by `decl` in `file`, whose `mod y;` children live in `child_dir`.
fn load_module(
    decl: &syn::ItemMod,
    file: &Path,
    child_dir: &Path,
    in_inline: bool,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Module> {
    let name = decl.ident.to_string();
    if let Some((_, items)) = &decl.content {
        return Ok(Module {
            items: items.clone(),
            file: file.to_path_buf(),
            child_dir: child_dir.join(&name),
            inline: true,
        });
    }
    let path = if let Some(rel) = path_attr(&decl.attrs) {
        let base = if in_inline {
            child_dir
        } else {
            file.parent().unwrap_or(Path::new(""))
        };
        base.join(rel)
    } else {
        let flat = child_dir.join(format!("{name}.rs"));
        let nested = child_dir.join(&name).join("mod.rs");
        match (read(&flat), read(&nested)) {
            (Ok(_), _) => flat,
            (Err(_), Ok(_)) => nested,
            (Err(_), Err(_)) => bail!(
                "{}:{}: module `{name}` is in neither {} nor {}",
                file.display(),
                decl.ident.span().start().line,
                flat.display(),
                nested.display()
            ),
        }
    };
    let parsed = parse(&path, read)?;
    // `x.rs` keeps its children in `x/`; `x/mod.rs` and `#[path]` files beside themselves.
    let is_mod_rs =
        path.file_name().is_some_and(|f| f == "mod.rs") || path_attr(&decl.attrs).is_some();
    let child_dir = if is_mod_rs {
        path.parent().unwrap_or(Path::new("")).to_path_buf()
    } else {
        child_dir.join(&name)
    };
    Ok(Module {
        items: parsed.items,
        file: path,
        child_dir,
        inline: false,
    })
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// `#[test]`, or a `#[cfg(…)]` that needs `test` (`cfg(test)`, `cfg(all(test, …))`).
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg")
                && a.meta.require_list().is_ok_and(|l| {
                    let words = idents(l.tokens.clone());
                    words.iter().any(|w| w == "test") && !words.iter().any(|w| w == "not")
                }))
    })
}

fn idents(tokens: TokenStream) -> Vec<String> {
    tokens
        .into_iter()
        .flat_map(|t| match t {
            TokenTree::Ident(i) => vec![i.to_string()],
            TokenTree::Group(g) => idents(g.stream()),
            _ => Vec::new(),
        })
        .collect()
}

/// The attributes of an item.
fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item;
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The names visible at the crate root, mapped to the top-level module they come from.
struct RootNames {
    modules: BTreeSet<String>,
    /// Re-exported (or privately imported) names: name -> top-level module.
    items: BTreeMap<String, String>,
}

impl RootNames {
    fn module_of(&self, name: &str) -> Option<&str> {
        self.modules
            .get(name)
            .or_else(|| self.items.get(name))
            .map(String::as_str)
    }
}

fn root_names(items: &[syn::Item], modules: &[(String, bool, Module)]) -> RootNames {
    let module_names: BTreeSet<String> = modules.iter().map(|(n, _, _)| n.clone()).collect();
    let mut names = BTreeMap::new();
    let mut globs = Vec::new();
    for item in items {
        let syn::Item::Use(u) = item else { continue };
        for (path, leaf) in use_paths(&u.tree) {
            let segs: Vec<&str> = path
                .iter()
                .map(|(s, _)| s.as_str())
                .skip_while(|s| *s == "crate" || *s == "self")
                .collect();
            let Some(first) = segs.first() else { continue };
            if !module_names.contains(*first) {
                continue;
            }
            match leaf {
                Some(name) => {
                    names.insert(name, first.to_string());
                }
                None => globs.push(first.to_string()),
            }
        }
    }
    // `pub use y::*`: the names `y` declares at its top level, unless the root names them itself.
    for glob in globs {
        let Some((_, _, m)) = modules.iter().find(|(n, _, _)| *n == glob) else {
            continue;
        };
        for name in m.items.iter().flat_map(declared_names) {
            names.entry(name).or_insert_with(|| glob.clone());
        }
    }
    // Items defined in the root itself shadow nothing here: they are nobody's module.
    for item in items {
        for name in declared_names(item) {
            if !matches!(item, syn::Item::Use(_) | syn::Item::Mod(_)) {
                names.remove(&name);
            }
        }
    }
    RootNames {
        modules: module_names,
        items: names,
    }
}

/// The names an item brings into its module.
fn declared_names(item: &syn::Item) -> Vec<String> {
    use syn::Item;
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::ExternCrate(i) => i.rename.as_ref().map_or(&i.ident, |(_, r)| r),
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => match &i.ident {
            Some(id) => id,
            None => return Vec::new(),
        },
        Item::Mod(i) => &i.ident,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        Item::Use(u) => {
            return use_paths(&u.tree)
                .into_iter()
                .filter_map(|(_, leaf)| leaf)
                .collect();
        }
        _ => return Vec::new(),
    };
    vec![ident.to_string()]
}

/// A segment of a path and where it was written.
type Seg = (String, Span);

/// The imports of a `use` tree: each full path with the name it binds (`None` for a glob, `_`
/// renames bind nothing but still count as a path).
fn use_paths(tree: &syn::UseTree) -> Vec<(Vec<Seg>, Option<String>)> {
    fn walk(tree: &syn::UseTree, prefix: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Option<String>)>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push((p.ident.to_string(), p.ident.span()));
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut path = prefix.clone();
                let bound = if n.ident == "self" {
                    prefix.last().map(|(s, _)| s.clone())
                } else {
                    path.push((n.ident.to_string(), n.ident.span()));
                    Some(n.ident.to_string())
                };
                out.push((path, bound));
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix.clone();
                if r.ident != "self" {
                    path.push((r.ident.to_string(), r.ident.span()));
                }
                out.push((path, Some(r.rename.to_string())));
            }
            syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// Walks the code of one top-level module (`top`) and records the other top-level modules it names.
struct Refs<'a> {
    top: &'a str,
    names: &'a RootNames,
    read: &'a dyn Fn(&Path) -> std::io::Result<String>,
    /// The module being walked, from the crate root: `[top, …]`.
    modpath: Vec<String>,
    file: PathBuf,
    child_dir: PathBuf,
    inline: bool,
    /// Inside this many test items (`#[cfg(test)]`, `#[test]`).
    in_test: usize,
    edges: BTreeMap<String, Witness>,
    error: Option<anyhow::Error>,
}

impl Refs<'_> {
    /// Records the edge a path makes, if it leads out of `top`.
    fn path(&mut self, segs: &[Seg]) {
        let Some((first, _)) = segs.first() else {
            return;
        };
        let rest = segs.iter().map(|(s, _)| s.as_str());
        let absolute: Vec<&str> = match first.as_str() {
            "crate" | "$crate" => rest.skip(1).collect(),
            "self" => self
                .modpath
                .iter()
                .map(String::as_str)
                .chain(rest.skip(1))
                .collect(),
            "super" => {
                let ups = segs.iter().take_while(|(s, _)| s == "super").count();
                let Some(keep) = self.modpath.len().checked_sub(ups) else {
                    return;
                };
                self.modpath[..keep]
                    .iter()
                    .map(String::as_str)
                    .chain(rest.skip(ups))
                    .collect()
            }
            _ => return,
        };
        let Some(target) = absolute.first().and_then(|n| self.names.module_of(n)) else {
            return;
        };
        if target == self.top {
            return;
        }
        let line = segs.last().map_or(0, |(_, span)| span.start().line);
        let witness = Witness {
            test: self.in_test > 0,
            file: self.file.clone(),
            line,
        };
        self.edges
            .entry(target.to_string())
            .and_modify(|w| {
                if witness < *w {
                    *w = witness.clone();
                }
            })
            .or_insert(witness);
    }

    /// Paths written inside a macro invocation, read from its tokens (strings and doc comments
    /// are literals there, so they are skipped like everywhere else).
    fn tokens(&mut self, stream: TokenStream) {
        let toks: Vec<TokenTree> = stream.into_iter().collect();
        let sep = |j: usize| {
            matches!((toks.get(j), toks.get(j + 1)),
                (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                    if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
        };
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                TokenTree::Group(g) => {
                    self.tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(id)
                    if (id == "crate" || id == "super" || id == "self")
                        && !(i >= 2 && sep(i - 2)) =>
                {
                    let mut segs = vec![(id.to_string(), id.span())];
                    let mut j = i + 1;
                    while sep(j) {
                        match toks.get(j + 2) {
                            Some(TokenTree::Ident(next)) => {
                                segs.push((next.to_string(), next.span()));
                                j += 3;
                            }
                            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                                // `crate::{a, b::c}` in a macro: read the group as a use tree.
                                let text = format!(
                                    "{}::{}",
                                    segs.iter()
                                        .map(|(s, _)| s.as_str())
                                        .collect::<Vec<_>>()
                                        .join("::"),
                                    g
                                );
                                if let Ok(tree) = syn::parse_str::<syn::UseTree>(&text) {
                                    for (path, _) in use_paths(&tree) {
                                        // Spans of re-parsed text are meaningless: use the group's.
                                        let path: Vec<Seg> =
                                            path.into_iter().map(|(s, _)| (s, g.span())).collect();
                                        self.path(&path);
                                    }
                                }
                                segs.clear();
                                j += 3;
                                break;
                            }
                            _ => break,
                        }
                    }
                    self.path(&segs);
                    i = j;
                }
                _ => i += 1,
            }
        }
    }

    fn nested_file(&mut self, m: &syn::ItemMod) {
        let loaded = match load_module(m, &self.file, &self.child_dir, self.inline, self.read) {
            Ok(l) => l,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        let saved = (
            std::mem::replace(&mut self.file, loaded.file),
            std::mem::replace(&mut self.child_dir, loaded.child_dir),
            std::mem::replace(&mut self.inline, loaded.inline),
        );
        self.modpath.push(m.ident.to_string());
        for item in &loaded.items {
            self.visit_item(item);
        }
        self.modpath.pop();
        (self.file, self.child_dir, self.inline) = saved;
    }
}

impl<'ast> Visit<'ast> for Refs<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let test = is_test(item_attrs(item));
        self.in_test += usize::from(test);
        visit::visit_item(self, item);
        self.in_test -= usize::from(test);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        let test = is_test(&f.attrs);
        self.in_test += usize::from(test);
        visit::visit_impl_item_fn(self, f);
        self.in_test -= usize::from(test);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        for a in &m.attrs {
            self.visit_attribute(a);
        }
        self.nested_file(m);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        for a in &u.attrs {
            self.visit_attribute(a);
        }
        for (path, _) in use_paths(&u.tree) {
            self.path(&path);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<Seg> = p
            .segments
            .iter()
            .map(|s| (s.ident.to_string(), s.ident.span()))
            .collect();
        self.path(&segs);
        visit::visit_path(self, p);
    }

    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        visit::visit_macro(self, m);
        self.tokens(m.tokens.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory crate: (path, contents) of its files.
    type Files<'a> = &'a [(&'a str, &'a str)];
    /// Edges as (from, to, line).
    type Edges<'a> = &'a [(&'a str, &'a str, usize)];

    /// The module graph of an in-memory crate whose root is `src/lib.rs`.
    fn graph_of(files: Files<'_>) -> Result<Graph> {
        let files: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(p, text)| (PathBuf::from(p), text.to_string()))
            .collect();
        module_graph(Path::new("src/lib.rs"), &|p| {
            files
                .get(p)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    /// The edges as `from -> to @ file:line`, sorted.
    fn edges(g: &Graph) -> Vec<String> {
        g.iter()
            .flat_map(|(from, to)| {
                to.iter().map(move |(to, w)| {
                    let test = if w.test { " (test)" } else { "" };
                    format!("{from} -> {to} @ {}:{}{test}", w.file.display(), w.line)
                })
            })
            .collect()
    }

    #[test]
    fn the_real_workspace_has_no_module_cycles() {
        check_workspace().unwrap();
    }

    #[test]
    fn edges_are_found_where_code_names_another_module() {
        // (files of the crate, the edges expected)
        let cases: &[(Files<'_>, &[&str])] = &[
            // A plain `use crate::…`.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;"),
                    ("src/a.rs", "use crate::b::B;"),
                    ("src/b.rs", "pub struct B;"),
                ],
                &["a -> b @ src/a.rs:1"],
            ),
            // Grouped uses, nested groups, renames, `self` in a group.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
                    (
                        "src/a.rs",
                        "use crate::{\n    b::{self, B},\n    c::C as Sea,\n};\nuse crate::d::*;",
                    ),
                    ("src/b.rs", ""),
                    ("src/c.rs", ""),
                    ("src/d.rs", ""),
                ],
                &[
                    "a -> b @ src/a.rs:2",
                    "a -> c @ src/a.rs:3",
                    "a -> d @ src/a.rs:5",
                ],
            ),
            // Names re-exported by the root lead to the module that defines them.
            (
                &[
                    (
                        "src/lib.rs",
                        "mod a;\nmod b;\npub use b::{B, make as build};",
                    ),
                    ("src/a.rs", "use crate::{B, build};"),
                    ("src/b.rs", ""),
                ],
                &["a -> b @ src/a.rs:1"],
            ),
            // A root glob re-export is followed through what the module declares.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;\npub use b::*;"),
                    ("src/a.rs", "fn f() -> crate::Bee { todo!() }"),
                    ("src/b.rs", "pub struct Bee;"),
                ],
                &["a -> b @ src/a.rs:1"],
            ),
            // Paths in code: types, expressions, generic arguments, patterns.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
                    (
                        "src/a.rs",
                        "fn f(x: Vec<crate::b::B>) {\n    let _ = crate::c::make();\n    \
                         if let crate::d::D::X = g() {}\n}",
                    ),
                    ("src/b.rs", ""),
                    ("src/c.rs", ""),
                    ("src/d.rs", ""),
                ],
                &[
                    "a -> b @ src/a.rs:1",
                    "a -> c @ src/a.rs:2",
                    "a -> d @ src/a.rs:3",
                ],
            ),
            // `super::` from a submodule stays inside; `super::super::` leaves it.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;"),
                    ("src/a.rs", "mod inner;\nfn g() {}"),
                    ("src/a/inner.rs", "use super::g;\nuse super::super::b::B;"),
                    ("src/b.rs", "pub struct B;"),
                ],
                &["a -> b @ src/a/inner.rs:2"],
            ),
            // `super::` from a top-level module is the root; `self::` stays inside.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;\npub use b::B;"),
                    (
                        "src/a.rs",
                        "use self::x::Y;\nmod x { pub struct Y; }\nuse super::B;",
                    ),
                    ("src/b.rs", ""),
                ],
                &["a -> b @ src/a.rs:3"],
            ),
            // `x/mod.rs`, inline modules with files below them, and test modules belong to x.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;"),
                    (
                        "src/a/mod.rs",
                        "mod deep {\n    mod file;\n}\n#[cfg(test)]\nmod tests;",
                    ),
                    ("src/a/deep/file.rs", "use crate::b::B;"),
                    ("src/a/tests.rs", "use super::*;\nuse crate::b::Helper;"),
                    ("src/b.rs", ""),
                ],
                &["a -> b @ src/a/deep/file.rs:1"],
            ),
            // Test code counts, and an edge seen only there says so; a witness outside tests
            // is preferred.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;\nmod c;"),
                    (
                        "src/a.rs",
                        "#[cfg(test)]\nmod tests;\n#[cfg(all(test, unix))]\nuse crate::c::C;\n\
                         #[cfg(not(test))]\nfn f() { crate::c::go() }",
                    ),
                    ("src/a/tests.rs", "use crate::b::Helper;"),
                    (
                        "src/b.rs",
                        "impl X {\n    #[test]\n    fn t() { crate::c::go() }\n}",
                    ),
                    ("src/c.rs", ""),
                ],
                &[
                    "a -> b @ src/a/tests.rs:1 (test)",
                    "a -> c @ src/a.rs:6",
                    "b -> c @ src/b.rs:3 (test)",
                ],
            ),
            // Paths inside macros count, including `$crate` and grouped ones.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
                    (
                        "src/a.rs",
                        "fn f() {\n    println!(\"{}\", crate::b::NAME);\n    \
                         assert!(vec![crate::c::C].is_empty());\n}\n\
                         macro_rules! m { () => { $crate::d::D } }",
                    ),
                    ("src/b.rs", ""),
                    ("src/c.rs", ""),
                    ("src/d.rs", ""),
                ],
                &[
                    "a -> b @ src/a.rs:2",
                    "a -> c @ src/a.rs:3",
                    "a -> d @ src/a.rs:5",
                ],
            ),
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;"),
                    ("src/a.rs", "m! {\n    use crate::{x, b::B};\n}"),
                    ("src/b.rs", ""),
                ],
                &["a -> b @ src/a.rs:2"],
            ),
            // Comments, doc comments (intra-doc links), strings and `pub(in …)` do not count.
            (
                &[
                    ("src/lib.rs", "mod a;\nmod b;"),
                    (
                        "src/a.rs",
                        "//! See [`crate::b::B`].\n// use crate::b::B;\n/* crate::b::B */\n\
                         /// Like [`crate::b`].\nfn f() -> &'static str {\n    \
                         println!(\"crate::b::B\");\n    \"crate::b::B\"\n}\n\
                         pub(in crate::b) fn g() {}",
                    ),
                    ("src/b.rs", ""),
                ],
                &[],
            ),
            // Items of the root itself, root globs and external crates make no edge.
            (
                &[
                    (
                        "src/lib.rs",
                        "mod a;\nmod b;\npub struct Root;\nuse std::fmt;",
                    ),
                    (
                        "src/a.rs",
                        "use crate::Root;\nuse super::*;\nuse crate::fmt;\nuse std::io;",
                    ),
                    ("src/b.rs", ""),
                ],
                &[],
            ),
            // `#[path]` on a file module, relative to the declaring file's directory.
            (
                &[
                    ("src/lib.rs", "mod a;\n#[path = \"other/bee.rs\"]\nmod b;"),
                    ("src/a.rs", ""),
                    ("src/other/bee.rs", "mod sub;"),
                    ("src/other/sub.rs", "use crate::a::A;"),
                ],
                &["b -> a @ src/other/sub.rs:1"],
            ),
        ];
        for (files, expected) in cases {
            let g = graph_of(files).unwrap();
            assert_eq!(edges(&g), *expected, "for {files:?}");
        }
    }

    #[test]
    fn cycles_are_reported_with_a_witness_per_edge() {
        // (edges as `from to line`, the rendered report)
        let cases: &[(Edges<'_>, &str)] = &[
            (&[("a", "b", 1), ("b", "c", 2)], ""),
            (
                &[("run", "inflight", 12), ("inflight", "run", 21)],
                "  k: inflight -> run -> inflight\n      inflight -> run: f.rs:21\n      \
                 run -> inflight: f.rs:12\n",
            ),
            // Two cycles sharing `a`; each edge on a cycle is shown once, in a shortest cycle.
            (
                &[
                    ("a", "b", 1),
                    ("b", "a", 2),
                    ("b", "c", 3),
                    ("c", "a", 4),
                    ("c", "d", 5),
                ],
                "  k: a -> b -> a\n      a -> b: f.rs:1\n      b -> a: f.rs:2\n  \
                 k: a -> b -> c -> a\n      a -> b: f.rs:1\n      b -> c: f.rs:3\n      \
                 c -> a: f.rs:4\n",
            ),
        ];
        for (edges, expected) in cases {
            let mut g = Graph::new();
            for (from, to, line) in *edges {
                g.entry(from.to_string()).or_default().insert(
                    to.to_string(),
                    Witness {
                        test: false,
                        file: PathBuf::from("f.rs"),
                        line: *line,
                    },
                );
            }
            let found = cycles(&g);
            assert_eq!(render("k", &g, &found, Path::new("")), *expected);
        }
    }

    #[test]
    fn a_cycle_in_a_crate_is_found_from_its_files() {
        let g = graph_of(&[
            ("src/lib.rs", "mod a;\nmod b;\npub use a::A;"),
            ("src/a.rs", "pub struct A;\nfn f() { crate::b::g(); }"),
            ("src/b.rs", "use crate::A;\npub fn g() {}"),
        ])
        .unwrap();
        assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    }

    #[test]
    fn unreadable_crates_are_errors_naming_the_file() {
        let cases: &[(Files<'_>, &str)] = &[
            (
                &[("src/lib.rs", "mod a;")],
                "module `a` is in neither src/a.rs nor src/a/mod.rs",
            ),
            (
                &[("src/lib.rs", "mod a;"), ("src/a.rs", "fn (")],
                "src/a.rs:1:",
            ),
        ];
        for (files, needle) in cases {
            let e = format!("{:#}", graph_of(files).unwrap_err());
            assert!(e.contains(needle), "expected {needle:?} in {e:?}");
        }
    }
}
