//! One module per command. A command module depends only on the modules below `cmd`
//! (context, flags, output, words, progress, metrics, tables, exit), never on another command:
//! what two commands share moves down.

pub mod bench;
pub mod bisect;
pub mod compare;
pub mod config;
pub mod db;
pub mod fleet;
pub mod history;
pub mod import;
pub mod load;
pub mod plan;
pub mod report;
pub mod run;
pub mod scale;
pub mod serve;
pub mod show;
pub mod submit;
pub mod tier;
pub mod worker;
