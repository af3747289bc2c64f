//! Parsing a suite file one node table at a time.
//!
//! A TOML document tree costs several KiB per `[[job]]` while it exists; for a suite of 100,000
//! nodes that tree, not the suite, would set the runner's peak memory. So the file is cut, with
//! TOML's own lexer (strings, comments and multi-line arrays are understood), into its node
//! tables (`[[job]]` / `[[benchmark]]`, each with its sub-tables such as `[job.env]`) and the
//! rest (`[suite]`, `[defaults]`, …). The rest is parsed first; each node table is parsed alone
//! when expansion asks for it: its name and matrix first (every name must be known to resolve
//! `needs`), then the whole [`NodeSpec`] when its nodes are built, and dropped. So the parsed
//! tables of 100,000 nodes never exist beside the nodes themselves. Line numbers in errors are
//! those of the whole file.
//!
//! Whatever the cutting does not understand for certain (a quoted table name, a sub-table
//! before its node, nodes also written as inline arrays) is parsed as one document, the way it
//! always was: same result, only more memory.

use std::borrow::Cow;
use std::path::Path;

use benchfleet_model::{NodeKind, NodeSpec, SuiteFile};
use serde::Deserialize;
use toml_parser::lexer::{Token, TokenKind};

use crate::Error;

/// A suite file's node tables, parsed when asked for: a file cut into node tables keeps only
/// their places in the text (see the module docs); one that could not be cut is parsed whole.
pub(super) enum Tables<'a> {
    Whole(SuiteFile),
    Cut(Cut<'a>),
}

/// A suite file cut into its node tables.
pub(super) struct Cut<'a> {
    path: &'a Path,
    text: &'a str,
    /// `[suite]`, `[defaults]` and the rest; no nodes.
    root: SuiteFile,
    /// Every `[[job]]`, then every `[[benchmark]]`, each in file order (expansion's order).
    nodes: Vec<NodePart>,
}

/// Read a suite file's text. `path` names the file in errors. Only the part that is not node
/// tables is parsed here (and a file that cannot be cut, whole).
pub(super) fn parse<'a>(path: &'a Path, text: &'a str) -> Result<Tables<'a>, Error> {
    let Some(parts) = cut(text) else {
        return whole(path, text).map(Tables::Whole);
    };
    if parts.nodes.is_empty() {
        return whole(path, text).map(Tables::Whole);
    }
    let root = whole(path, &parts.rest)?;
    if !root.job.is_empty() || !root.benchmark.is_empty() {
        // Nodes written as inline arrays as well: let the TOML parser judge the whole file.
        return whole(path, text).map(Tables::Whole);
    }
    let mut nodes = parts.nodes;
    // Stable: jobs first, each kind in file order.
    nodes.sort_by_key(|n| n.kind != Table::Job);
    Ok(Tables::Cut(Cut {
        path,
        text,
        root,
        nodes,
    }))
}

impl Tables<'_> {
    /// Every node table parsed: the whole file as one [`SuiteFile`].
    #[cfg(test)]
    pub(super) fn into_file(self) -> Result<SuiteFile, Error> {
        match self {
            Tables::Whole(file) => Ok(file),
            Tables::Cut(cut) => {
                let mut file = cut.root.clone();
                for i in 0..cut.nodes.len() {
                    let spec = cut.spec(i)?;
                    match cut.nodes[i].kind {
                        Table::Job => file.job.push(spec),
                        Table::Benchmark => file.benchmark.push(spec),
                    }
                }
                Ok(file)
            }
        }
    }
}

impl Cut<'_> {
    fn table(&self, i: usize) -> (&str, usize) {
        let part = &self.nodes[i];
        (&self.text[part.start..part.end], part.line)
    }

    fn parse_one<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<One<T>, Error> {
        let (table, line) = self.table(i);
        toml::from_str(table).map_err(|e| super::suite_parse_error(self.path, table, e, line))
    }

    fn spec(&self, i: usize) -> Result<NodeSpec, Error> {
        // The table starts with its own header, so it holds exactly that one node.
        self.parse_one::<NodeSpec>(i)?
            .into_node()
            .ok_or_else(|| super::invalid(self.path, "a node table holds no node".into()))
    }
}

impl super::NodeTables for Tables<'_> {
    fn file(&self) -> &SuiteFile {
        match self {
            Tables::Whole(file) => file,
            Tables::Cut(cut) => &cut.root,
        }
    }

    fn count(&self) -> usize {
        match self {
            Tables::Whole(file) => file.count(),
            Tables::Cut(cut) => cut.nodes.len(),
        }
    }

    fn kind(&self, i: usize) -> NodeKind {
        match self {
            Tables::Whole(file) => file.kind(i),
            Tables::Cut(cut) => match cut.nodes[i].kind {
                Table::Job => NodeKind::Job,
                Table::Benchmark => NodeKind::Benchmark,
            },
        }
    }

    fn head(&self, i: usize) -> Result<super::Head, Error> {
        match self {
            Tables::Whole(file) => file.head(i),
            Tables::Cut(cut) => cut
                .parse_one::<super::Head>(i)?
                .into_node()
                .ok_or_else(|| super::invalid(cut.path, "a node table holds no node".into())),
        }
    }

    fn spec(&self, i: usize) -> Result<Cow<'_, NodeSpec>, Error> {
        match self {
            Tables::Whole(file) => file.spec(i),
            Tables::Cut(cut) => cut.spec(i).map(Cow::Owned),
        }
    }
}

fn whole(path: &Path, text: &str) -> Result<SuiteFile, Error> {
    toml::from_str(text).map_err(|e| super::suite_parse_error(path, text, e, 0))
}

/// One node table parsed alone, as `T` (a whole [`NodeSpec`], or only its [`super::Head`]).
#[derive(Deserialize)]
struct One<T> {
    #[serde(default = "Vec::new")]
    job: Vec<T>,
    #[serde(default = "Vec::new")]
    benchmark: Vec<T>,
}

impl<T> One<T> {
    fn into_node(self) -> Option<T> {
        self.job.into_iter().chain(self.benchmark).next()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Job,
    Benchmark,
}

/// A node table: its bytes in the file and the (0-based) line it starts on.
#[derive(Debug, PartialEq)]
struct NodePart {
    kind: Table,
    start: usize,
    end: usize,
    line: usize,
}

#[derive(Debug)]
struct Parts {
    /// The file with each node table replaced by its newlines, so lines keep their numbers.
    rest: String,
    nodes: Vec<NodePart>,
}

/// What a table header names, as far as cutting cares.
enum Header {
    /// `[[job]]` or `[[benchmark]]`: a new node table.
    Node(Table),
    /// `[job.…]` or `[[benchmark.…]]`: part of the node table before it.
    Sub(Table),
    /// Any other table.
    Other,
}

/// Cut `text` into node tables and the rest; `None` when the file is not cut with certainty.
/// Tokens are read one at a time (a token list of the whole file would cost more than the
/// tree this avoids); only a header line's tokens are kept, to read its name.
fn cut(text: &str) -> Option<Parts> {
    let mut tokens = toml_parser::Source::new(text).lex();
    let mut nodes: Vec<NodePart> = Vec::new();
    // The node table being read: its kind, first byte and (0-based) first line. It ends at the
    // next table that is not its own sub-table.
    let mut open: Option<(Table, usize, usize)> = None;
    let mut close = |open: &mut Option<(Table, usize, usize)>, end: usize| {
        if let Some((kind, start, line)) = open.take() {
            nodes.push(NodePart {
                kind,
                start,
                end,
                line,
            });
        }
    };
    let mut line = 0usize;
    let mut depth = 0usize;
    let mut at_line_start = true;
    let mut header_line: Vec<Token> = Vec::new();
    while let Some(t) = tokens.next() {
        match t.kind() {
            TokenKind::Newline => {
                line += 1;
                if depth == 0 {
                    at_line_start = true;
                }
                continue;
            }
            // Whitespace and comments do not end a line's start.
            TokenKind::Whitespace | TokenKind::Comment => continue,
            TokenKind::MlBasicString | TokenKind::MlLiteralString => {
                line += text[t.span().start()..t.span().end()].matches('\n').count();
            }
            TokenKind::LeftSquareBracket if at_line_start && depth == 0 => {
                header_line.clear();
                header_line.push(t);
                let mut ended = false;
                for t in tokens.by_ref() {
                    if matches!(t.kind(), TokenKind::Newline | TokenKind::Eof) {
                        ended = t.kind() == TokenKind::Newline;
                        break;
                    }
                    header_line.push(t);
                }
                let start = line_start(text, header_line[0].span().start());
                match header(text, &header_line)? {
                    Header::Node(kind) => {
                        close(&mut open, start);
                        open = Some((kind, start, line));
                    }
                    Header::Sub(kind) => {
                        if open.is_none_or(|(k, _, _)| k != kind) {
                            return None;
                        }
                    }
                    Header::Other => close(&mut open, start),
                }
                if ended {
                    line += 1;
                }
                at_line_start = true;
                continue;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
        at_line_start = false;
    }
    close(&mut open, text.len());
    let mut rest = String::with_capacity(text.len() - covered(&nodes));
    let mut at = 0;
    for n in &nodes {
        rest.push_str(&text[at..n.start]);
        rest.extend(std::iter::repeat_n(
            '\n',
            text[n.start..n.end].matches('\n').count(),
        ));
        at = n.end;
    }
    rest.push_str(&text[at..]);
    Some(Parts { rest, nodes })
}

fn covered(nodes: &[NodePart]) -> usize {
    nodes.iter().map(|n| n.end - n.start).sum()
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// What the table header on a line names; `tokens` are the line's, from its `[`. `None` for a
/// header that is not plainly written.
fn header(text: &str, tokens: &[Token]) -> Option<Header> {
    let mut j = 1;
    let array = tokens.get(j)?.kind() == TokenKind::LeftSquareBracket
        && tokens[j].span().start() == tokens[0].span().end();
    if array {
        j += 1;
    }
    let skip_ws = |mut j: usize| {
        while tokens
            .get(j)
            .is_some_and(|t| t.kind() == TokenKind::Whitespace)
        {
            j += 1;
        }
        j
    };
    j = skip_ws(j);
    let first = tokens.get(j)?;
    if first.kind() != TokenKind::Atom {
        // A quoted key: `["job"]` is `[job]` to TOML; leave such files to the whole parse.
        return quoted_or_other(text, first);
    }
    let name = &text[first.span().start()..first.span().end()];
    let table = match name {
        "job" => Some(Table::Job),
        "benchmark" => Some(Table::Benchmark),
        _ => None,
    };
    j = skip_ws(j + 1);
    let dotted = tokens.get(j)?.kind() == TokenKind::Dot;
    // Find the end of the header: the closing bracket(s).
    while tokens.get(j)?.kind() != TokenKind::RightSquareBracket {
        if tokens[j].kind() == TokenKind::Newline {
            return None;
        }
        j += 1;
    }
    if array && tokens.get(j + 1)?.kind() != TokenKind::RightSquareBracket {
        return None;
    }
    Some(match (table, dotted, array) {
        (Some(t), false, true) => Header::Node(t),
        // `[job]` (not an array) is an error TOML reports better on the whole file.
        (Some(_), false, false) => return None,
        (Some(t), true, _) => Header::Sub(t),
        (None, _, _) => Header::Other,
    })
}

/// A header starting with a quoted key: fine to cut around when it cannot name a node table.
fn quoted_or_other(text: &str, first: &Token) -> Option<Header> {
    if !matches!(
        first.kind(),
        TokenKind::BasicString | TokenKind::LiteralString
    ) {
        return None;
    }
    let raw = &text[first.span().start()..first.span().end()];
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    if inner.contains('\\') || inner == "job" || inner == "benchmark" {
        return None;
    }
    Some(Header::Other)
}

#[cfg(test)]
mod tests;
