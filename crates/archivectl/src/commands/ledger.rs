//! `archivectl ledger list|show|export`: what the ledger knows about each archive, for people (tables) and
//! scripts (`--json`, JSON and CSV exports); `ledger migrate` copies a SQLite ledger into PostgreSQL
//! (`ledger/migrate.rs`).

mod migrate;

use archive_db::escape_controls;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use archive_db::{ArchiveFilter, ArchiveRecord};
use opentok_rest::model::ArchiveStatus;

use crate::context::Context;
use crate::exit::Failure;
use crate::ledger_path::LedgerArgs;

/// `archivectl ledger ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the archives in the ledger, newest first (with --json: every field of each).
    List(ListArgs),
    /// Show one archive: every field, its status history and the service's JSON.
    Show(ShowArgs),
    /// Write the whole ledger as JSON or CSV (to stdout, or --out).
    Export(ExportArgs),
    /// Copy a SQLite ledger into PostgreSQL (--to postgres://...), then check both sides match.
    Migrate(migrate::MigrateArgs),
}

/// `ledger list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only archives in this status (started, paused, stopped, uploaded, available, failed, expired, deleted).
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    /// Only archives of this session.
    #[arg(long, value_name = "ID")]
    session_id: Option<String>,
    /// Only archives waiting to be pulled: uploaded or available, not pulled, and decryptable (a password is
    /// known, or no certificate was active when they were made).
    #[arg(long, conflicts_with = "status")]
    pending: bool,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// `ledger show`
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The archive id.
    #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
    id: String,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON array of archive objects.
    Json,
    /// CSV with a header line (RFC 4180).
    Csv,
}

/// `ledger export`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// json or csv.
    #[arg(long, value_enum)]
    format: Format,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// Runs `archivectl ledger ...`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        Command::Migrate(args) => migrate::run(args, ctx),
        Command::List(args) => {
            // A mistaken flag is reported before the ledger is looked at.
            let status = args.status.as_deref().map(parse_status).transpose()?;
            let ledger = args.ledger.open_for_reading(ctx)?;
            let records = if args.pending {
                let mut all = ledger.pending()?;
                if let Some(session) = &args.session_id {
                    all.retain(|r| &r.session_id == session);
                }
                all
            } else {
                ledger.list(&ArchiveFilter {
                    status,
                    session_id: args.session_id,
                    project_id: None,
                })?
            };
            ctx.out.emit(&records, || print_table(&records))
        }
        Command::Show(args) => {
            let ledger = args.ledger.open_for_reading(ctx)?;
            let details = ledger.archive_details(&args.id)?.ok_or_else(|| {
                Failure::invalid(format!("archive {} is not in the ledger", args.id))
            })?;
            ctx.out.emit(&details, || {
                print_record(&details.record);
                println!("status history:");
                for h in &details.status_history {
                    println!(
                        "  {:<10} {}{}{}",
                        escape_controls(&h.status),
                        h.first_received_at,
                        if h.applied {
                            ""
                        } else {
                            "  (late: not applied)"
                        },
                        if h.times_seen > 1 {
                            format!("  (received {} times)", h.times_seen)
                        } else {
                            String::new()
                        }
                    );
                }
            })
        }
        Command::Export(args) => {
            let ledger = args.ledger.open_for_reading(ctx)?;
            let write = |w: &mut dyn Write| -> anyhow::Result<()> {
                match args.format {
                    Format::Json => ledger.export_json(&mut *w)?,
                    Format::Csv => ledger.export_csv(&mut *w)?,
                }
                w.flush().context("cannot write the export")
            };
            match &args.out {
                None => write(&mut std::io::stdout().lock()),
                Some(path) => {
                    refuse_ledger_files(path, ledger.path())?;
                    let mut file = archive_core::atomic::AtomicFile::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    {
                        let mut w = std::io::BufWriter::new(file.file_mut());
                        write(&mut w)?;
                    }
                    file.commit()
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    ctx.out.note(format!("wrote {}", path.display()));
                    Ok(())
                }
            }
        }
    }
}

/// Refuses an export path that is the ledger itself or one of SQLite's files beside it: writing there
/// would destroy every password the ledger holds.
fn refuse_ledger_files(out: &Path, ledger: &Path) -> anyhow::Result<()> {
    let resolve = |p: &Path| -> Option<PathBuf> {
        let name = p.file_name()?;
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(dir.canonicalize().ok()?.join(name))
    };
    let (Some(out_resolved), Some(ledger_resolved)) = (
        out.canonicalize().ok().or_else(|| resolve(out)),
        ledger.canonicalize().ok().or_else(|| resolve(ledger)),
    ) else {
        return Ok(());
    };
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut candidate = ledger_resolved.clone().into_os_string();
        candidate.push(suffix);
        if out_resolved.as_os_str() == candidate {
            return Err(Failure::usage(format!(
                "--out {} is the ledger's own file{}: export somewhere else",
                out.display(),
                if suffix.is_empty() {
                    String::new()
                } else {
                    format!(" ({suffix})")
                }
            )));
        }
    }
    Ok(())
}

fn parse_status(text: &str) -> anyhow::Result<ArchiveStatus> {
    match ArchiveStatus::from(text) {
        ArchiveStatus::Unknown(other) => Err(Failure::usage(format!(
            "unknown status {other:?}: use started, paused, stopped, uploaded, available, failed, expired or deleted"
        ))),
        known => Ok(known),
    }
}

fn password_state(r: &ArchiveRecord) -> &'static str {
    match (&r.password, r.password_conflict) {
        (Some(_), true) => "CONFLICT",
        (Some(_), false) => "yes",
        (None, _) => "-",
    }
}

fn print_table(records: &[ArchiveRecord]) {
    if records.is_empty() {
        println!("no archives");
        return;
    }
    println!(
        "{:<36}  {:<9}  {:<24}  {:>12}  {:<8}  PULLED TO",
        "ID", "STATUS", "CREATED", "SIZE", "PASSWORD"
    );
    for r in records {
        println!(
            "{:<36}  {:<9}  {:<24}  {:>12}  {:<8}  {}",
            escape_controls(&r.id),
            escape_controls(r.status.as_str()),
            r.created_at.as_deref().unwrap_or("-"),
            r.size,
            password_state(r),
            r.local_path.as_deref().unwrap_or("-")
        );
    }
}

fn print_record(r: &ArchiveRecord) {
    // Text from the service or a callback, with control characters escaped.
    let opt = |v: &Option<String>| -> String {
        v.as_deref()
            .map_or_else(|| "-".into(), |t| escape_controls(t).into_owned())
    };
    println!("id:                {}", escape_controls(&r.id));
    println!("status:            {}", escape_controls(r.status.as_str()));
    println!("session:           {}", escape_controls(&r.session_id));
    println!("project:           {}", opt(&r.project_id));
    println!("name:              {}", opt(&r.name));
    println!("created:           {}", opt(&r.created_at));
    println!("size:              {} bytes", r.size);
    println!("duration:          {} s (as reported)", r.duration);
    println!(
        "password:          {}",
        match &r.password {
            Some(p) if r.password_conflict => format!(
                "{} (CONFLICT: also received {})",
                escape_controls(p),
                escape_controls(&r.conflicting_passwords.join(", "))
            ),
            Some(p) => escape_controls(p).into_owned(),
            None => "-".into(),
        }
    );
    println!("pulled to:         {}", opt(&r.local_path));
    println!("sha256:            {}", opt(&r.sha256));
    println!(
        "service sha256sum: {}{}",
        opt(&r.service_sha256),
        match r.service_sha256_matched {
            Some(true) => " (matches the object as downloaded)",
            Some(false) =>
                " (does NOT match the object as downloaded: a warning, see the user guide)",
            None => "",
        }
    );
    println!(
        "measured duration: {}",
        r.measured_duration
            .map_or("-".into(), |d| format!("{d:.3} s"))
    );
    println!("verified:          {}", opt(&r.verified_at));
    println!("deleted remotely:  {}", opt(&r.remote_deleted_at));
    println!("first seen:        {}", r.first_seen_at);
}
