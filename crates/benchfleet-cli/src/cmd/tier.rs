//! `benchfleet tier …`: status, migrate, verify and gc of the tiered store.

use std::sync::Arc;

use clap::{Args, Subcommand};

use benchfleet::model::Timestamp;
use benchfleet::store::{self, FaultPlan, MigrateOptions, MigrateProgress, Storage, Tier};

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// Records and bytes per tier, with each tier's compression ratio.
    Status(TierOutput),
    /// Move records to colder tiers by age (hot → warm → cold), resuming interrupted work first.
    Migrate(MigrateArgs),
    /// Re-read and re-hash every record; list corrupt or missing ones; exit 1 if any.
    Verify(TierOutput),
    /// Finish interrupted migrations, then remove objects nothing references.
    Gc(TierOutput),
}

#[derive(Debug, Args)]
pub struct TierOutput {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Measure ages from the current time (the default).
    #[arg(long, conflicts_with = "as_of")]
    pub now: bool,
    /// Measure ages as if it were DATE (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<Timestamp>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn tier(ctx: &Context, cmd: TierCommand) -> Result<Status> {
    let storage = ctx.storage().await?;
    let out = &ctx.out;
    match cmd {
        TierCommand::Status(o) => status(out, storage, o.json).await,
        TierCommand::Migrate(a) => migrate(out, storage, a).await,
        TierCommand::Verify(o) => verify(out, storage, o.json).await,
        TierCommand::Gc(o) => gc(out, storage, o.json).await,
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

async fn status(out: &Output, storage: &Storage, json: bool) -> Result<Status> {
    let r = store::status(storage).await?;
    if json {
        out.emit(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
        return Ok(Status::Success);
    }
    let mut text = format!(
        "{:<5} {:>9} {:>11} {:>11} {:>7} {:>8}  {}\n",
        "tier", "records", "bytes", "stored", "ratio", "objects", "backend"
    );
    for t in &r.tiers {
        text.push_str(&format!(
            "{:<5} {:>9} {:>11} {:>11} {:>6.2}x {:>8}  {}\n",
            t.tier.as_str(),
            t.records,
            human_bytes(t.bytes),
            human_bytes(t.stored_bytes),
            t.ratio,
            t.objects,
            t.backend
        ));
    }
    if let Some(c) = &r.catalog {
        text.push_str(&format!(
            "catalog {:>21} {:>11} {:>6.1}%  {}{}\n",
            "",
            human_bytes(c.bytes),
            100.0 * c.overhead,
            c.backend,
            c.file_bytes.map_or(String::new(), |f| format!(
                " (whole file {})",
                human_bytes(f)
            ))
        ));
        text.push_str("(catalog: its own tables, and their overhead on the records' bytes)\n");
    }
    text.push_str(&format!(
        "dictionaries: {} ({}); orphans: {} ({}){}; interrupted migrations: {}\n",
        r.dictionaries,
        human_bytes(r.dictionary_bytes),
        r.orphans,
        human_bytes(r.orphan_bytes),
        if r.orphans > 0 {
            " — `benchfleet tier gc` removes them"
        } else {
            ""
        },
        r.pending_journals
    ));
    out.emit(&text)?;
    Ok(Status::Success)
}

async fn migrate(out: &Output, storage: &Storage, args: MigrateArgs) -> Result<Status> {
    let fault = match std::env::var(store::FAULT_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            Some(Arc::new(FaultPlan::parse(&text).map_err(|e| {
                CliError::internal(format!("{}: {e}", store::FAULT_ENV))
            })?))
        }
        _ => None,
    };
    let tty = out.stderr_is_terminal;
    let progress: store::ProgressFn = Arc::new(move |p: MigrateProgress| {
        let line = format!(
            "migrating to {}: {}/{} records",
            p.target.as_str(),
            p.done,
            p.total
        );
        if tty {
            eprint!("\r{line}\x1b[K");
            if p.done == p.total {
                eprintln!();
            }
        } else {
            eprintln!("{line}");
        }
    });
    let opts = MigrateOptions {
        now: args.as_of,
        fault,
        progress: Some(progress),
    };
    let r = store::migrate(storage, &opts).await.map_err(|e| {
        CliError::from(e)
            .context("tier migration stopped; rerun `benchfleet tier migrate` to finish it")
    })?;
    if args.json {
        out.emit(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
    } else {
        let ratio = if r.bytes_out == 0 {
            1.0
        } else {
            r.bytes_in as f64 / r.bytes_out as f64
        };
        out.emit(&format!(
            "migrated {} records to warm and {} to cold in {} batches ({} → {}, {ratio:.2}x){}\n",
            r.to_warm,
            r.to_cold,
            r.batches,
            human_bytes(r.bytes_in),
            human_bytes(r.bytes_out),
            if r.resumed_batches > 0 {
                format!(
                    "; finished {} interrupted batches ({} records)",
                    r.resumed_batches, r.resumed_records
                )
            } else {
                String::new()
            }
        ))?;
        if r.reclaimed_bytes > 0 {
            out.emit(&format!(
                "gave {} of free catalog pages back to the file system\n",
                human_bytes(r.reclaimed_bytes)
            ))?;
        }
    }
    Ok(Status::Success)
}

async fn verify(out: &Output, storage: &Storage, json: bool) -> Result<Status> {
    let r = store::verify(storage).await?;
    if json {
        out.emit(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
    } else {
        let mut text = String::new();
        for p in &r.problems {
            text.push_str(&format!(
                "{:<9} {} run {} {} #{} ({} tier, {}): {}\n",
                format!("{:?}", p.kind).to_uppercase(),
                p.digest,
                p.run_id,
                p.name,
                p.iteration,
                p.tier,
                p.location,
                p.message
            ));
        }
        let per_tier = [Tier::Hot, Tier::Warm, Tier::Cold]
            .iter()
            .map(|t| format!("{} {}", r.intact.get(t).copied().unwrap_or(0), t.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!(
            "{} records checked: {} intact ({per_tier}), {} with problems; {} orphaned objects, {} interrupted migrations\n",
            r.checked,
            r.intact.values().sum::<u64>(),
            r.problems.len(),
            r.orphans,
            r.pending_journals
        ));
        out.emit(&text)?;
    }
    Ok(if r.is_ok() {
        Status::Success
    } else {
        Status::Failed
    })
}

async fn gc(out: &Output, storage: &Storage, json: bool) -> Result<Status> {
    let r = store::gc(storage).await?;
    if json {
        out.emit(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
    } else {
        out.emit(&format!(
            "finished {} interrupted migrations; removed {} orphaned objects ({})\n",
            r.resumed_batches,
            r.removed,
            human_bytes(r.removed_bytes)
        ))?;
        if r.stale_leases > 0 {
            out.emit(&format!(
                "removed {} writer leases of processes that are gone\n",
                r.stale_leases
            ))?;
        }
        if r.reclaimed_bytes > 0 {
            out.emit(&format!(
                "gave {} of free catalog pages back to the file system\n",
                human_bytes(r.reclaimed_bytes)
            ))?;
        }
        if !r.active_writers.is_empty() {
            eprintln!(
                "kept {} unreferenced objects: still being written by {}; rerun `benchfleet tier gc` when they finish",
                r.kept,
                r.active_writers.join(", ")
            );
        }
    }
    Ok(Status::Success)
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS`, optionally ending in `Z` (UTC).
fn parse_date(s: &str) -> std::result::Result<Timestamp, String> {
    let err = || format!("`{s}` is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
    let t = s.trim().trim_end_matches(['Z', 'z']);
    let (date, time) = match t.split_once(['T', 't', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let num = |x: &str| x.parse::<i64>().map_err(|_| err());
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(err());
    };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return Err(err());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(tm) = time {
        let hms: Vec<&str> = tm.split(':').collect();
        let (h, mi, se) = match hms.as_slice() {
            [h, mi] => (num(h)?, num(mi)?, 0),
            [h, mi, se] => (num(h)?, num(mi)?, num(se)?),
            _ => return Err(err()),
        };
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&se) {
            return Err(err());
        }
        secs += h * 3600 + mi * 60 + se;
    }
    Ok(Timestamp::from_unix_seconds(secs))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for (text, want) in [
            ("1970-01-01", Some(0)),
            ("1970-01-02", Some(86_400)),
            ("2000-03-01", Some(951_868_800)),
            ("2024-02-29T12:30:15Z", Some(1_709_209_815)),
            ("2024-02-29T12:30", Some(1_709_209_800)),
            ("2023-02-29", None),
            ("2024-13-01", None),
            ("2024-01-01T25:00", None),
            ("yesterday", None),
            ("2024-01", None),
        ] {
            let got = parse_date(text).ok().map(|t| t.0 / 1_000_000_000);
            assert_eq!(got, want, "{text}");
        }
    }
}
