//! Renders results: terminal table, Markdown, JSON (hyperfine-compatible).
