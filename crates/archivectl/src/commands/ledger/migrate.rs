//! `archivectl ledger migrate --to postgres://...`: copies a SQLite ledger into PostgreSQL (issue 14), so a
//! team moving to several machines keeps its history.
//!
//! Every row of every table is copied with its ids, in one transaction; rows the destination already has are
//! left alone, so running it again adds nothing. Then both sides are read back and compared table by table:
//! row counts and a checksum of the rows ([`archive_db::TableSum`]). It prints the comparison (or `--json`) and
//! fails (exit 8) unless every table matches — which also catches a destination that already held other rows.

use std::path::PathBuf;

use archive_db::{Ledger, LedgerLocation};

use crate::context::Context;
use crate::exit::Failure;
use crate::ledger_path::LedgerArgs;

/// `ledger migrate`
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The PostgreSQL ledger to copy into: a postgres:// URL without a password (the password comes from
    /// `[ledger] password_file`, PGPASSWORD or ~/.pgpass).
    #[arg(long, value_name = "URL")]
    to: String,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// One table's comparison, as printed.
#[derive(Debug, serde::Serialize)]
struct TableReport {
    table: String,
    source_rows: u64,
    copied: u64,
    destination_rows: u64,
    source_checksum: String,
    destination_checksum: String,
    matches: bool,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    source: String,
    destination: String,
    tables: Vec<TableReport>,
    copied: u64,
    verified: bool,
}

/// Runs `archivectl ledger migrate`.
pub fn run(args: MigrateArgs, ctx: &Context) -> anyhow::Result<()> {
    let out = &ctx.out;
    let dest_location = crate::ledger_path::locate_url(
        &args.to,
        "--to",
        &ctx.config.ledger,
        |name| std::env::var(name).ok(),
        |warning| out.note(format!("warning: {warning}")),
    )?;
    if !matches!(dest_location, LedgerLocation::Postgres(_)) {
        return Err(Failure::usage("--to must be a postgres:// URL"));
    }
    let source_target = args.ledger.target(ctx)?;
    let LedgerLocation::Sqlite(source_path) = source_target.location() else {
        return Err(Failure::usage(format!(
            "the ledger to copy from must be a SQLite file, not {source_target}: give it with --ledger PATH"
        )));
    };
    let source_path: PathBuf = source_path.clone();
    if !source_path.exists() {
        return Err(Failure::invalid(format!(
            "no ledger at {}: nothing to copy",
            source_path.display()
        )));
    }
    let ledger_failure = |message: String| Failure {
        code: crate::exit::LEDGER,
        message,
    };
    let source = Ledger::open(&source_path)
        .map_err(|e| ledger_failure(format!("cannot open {}: {e}", source_path.display())))?;
    let dest_name = dest_location.redacted();
    let mut dest = Ledger::open_location(&dest_location)
        .map_err(|e| ledger_failure(format!("cannot open the ledger {dest_name}: {e}")))?;
    let copied = source.copy_into(&mut dest).map_err(|e| {
        ledger_failure(format!(
            "cannot copy into {dest_name}: {e}; nothing was copied"
        ))
    })?;
    let before = source
        .table_sums()
        .map_err(|e| ledger_failure(format!("cannot read back {}: {e}", source_path.display())))?;
    let after = dest
        .table_sums()
        .map_err(|e| ledger_failure(format!("cannot read back {dest_name}: {e}")))?;
    let tables: Vec<TableReport> = before
        .iter()
        .map(|s| {
            let d = after.iter().find(|d| d.table == s.table);
            let c = copied.iter().find(|c| c.table == s.table);
            TableReport {
                table: s.table.clone(),
                source_rows: s.rows,
                copied: c.map_or(0, |c| c.inserted),
                destination_rows: d.map_or(0, |d| d.rows),
                source_checksum: s.checksum.clone(),
                destination_checksum: d.map(|d| d.checksum.clone()).unwrap_or_default(),
                matches: d.is_some_and(|d| d.rows == s.rows && d.checksum == s.checksum),
            }
        })
        .collect();
    let report = Report {
        source: source_path.display().to_string(),
        destination: dest_name.clone(),
        copied: tables.iter().map(|t| t.copied).sum(),
        verified: tables.iter().all(|t| t.matches),
        tables,
    };
    ctx.out.emit(&report, || {
        println!("{} -> {}", report.source, report.destination);
        println!(
            "{:<24} {:>8} {:>8} {:>8}  {:<16}  {:<16}",
            "table", "source", "copied", "dest", "source sum", "dest sum"
        );
        for t in &report.tables {
            println!(
                "{:<24} {:>8} {:>8} {:>8}  {:<16}  {:<16}{}",
                t.table,
                t.source_rows,
                t.copied,
                t.destination_rows,
                t.source_checksum,
                t.destination_checksum,
                if t.matches { "" } else { "  DIFFERS" }
            );
        }
        if report.verified {
            println!(
                "verified: every table has the same rows on both sides ({} rows copied now)",
                report.copied
            );
        }
    })?;
    if !report.verified {
        let differ: Vec<&str> = report
            .tables
            .iter()
            .filter(|t| !t.matches)
            .map(|t| t.table.as_str())
            .collect();
        return Err(ledger_failure(format!(
            "{dest_name} differs from {} in {}: it held other rows before the copy (migrate into an empty database)",
            report.source,
            differ.join(", ")
        ))
        .into());
    }
    Ok(())
}
