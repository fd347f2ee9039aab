//! `archivectl archives list|get|start|stop|delete`: the archive REST calls, tables for people, JSON for scripts.

use anyhow::Context as _;
use opentok_rest::model::{
    Archive, ArchiveLayout, LayoutType, OutputMode, StartArchiveRequest, StreamMode,
};

use crate::context::{self, Context};

/// `archivectl archives ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List archives, newest first (every page); with --json, all archive objects.
    List(ListArgs),
    /// Show one archive (its download URL without the signature unless --show-url).
    Get(GetArgs),
    /// Start recording a session.
    Start(StartArgs),
    /// Stop a recording.
    Stop(IdArg),
    /// Delete an archive's record in the service (allowed once it is available, uploaded or deleted) and
    /// record the deletion in the ledger; the object in your storage target stays.
    Delete(DeleteArgs),
}

/// `archives delete`
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The archive id.
    #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
    id: String,
    #[command(flatten)]
    ledger: crate::ledger_path::LedgerArgs,
}

/// `archives list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only the archives of this session.
    #[arg(long, value_name = "ID")]
    session_id: Option<String>,
}

/// `archives get`
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The archive id.
    #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
    id: String,
    /// Print the download URL whole, signature included (to fetch the file yourself, e.g. with curl):
    /// anyone who sees it can download the archive until it expires.
    #[arg(long)]
    show_url: bool,
}

/// An archive id.
#[derive(Debug, clap::Args)]
pub struct IdArg {
    /// The archive id.
    #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
    id: String,
}

/// `archives start`
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The session to record.
    #[arg(long, value_name = "ID")]
    session_id: String,
    /// A name for the archive.
    #[arg(long)]
    name: Option<String>,
    /// Do not record audio.
    #[arg(long)]
    no_audio: bool,
    /// Do not record video.
    #[arg(long)]
    no_video: bool,
    /// `composed` (one file; the only mode that can be encrypted) or `individual`.
    #[arg(long, value_name = "MODE", value_parser = ["composed", "individual"])]
    output_mode: Option<String>,
    /// Resolution, e.g. 1280x720.
    #[arg(long)]
    resolution: Option<String>,
    /// Layout type: bestFit, pip, verticalPresentation, horizontalPresentation, custom.
    #[arg(long, value_name = "TYPE")]
    layout: Option<String>,
    /// Stylesheet for --layout custom.
    #[arg(long, value_name = "CSS")]
    layout_stylesheet: Option<String>,
    /// `auto` or `manual` stream selection.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "manual"])]
    stream_mode: Option<String>,
    /// Tag allowing several archives of one session.
    #[arg(long, value_name = "TAG")]
    multi_archive_tag: Option<String>,
    /// Maximum video bitrate, bits per second.
    #[arg(long, value_name = "BPS")]
    max_bitrate: Option<u64>,
}

/// Runs `archivectl archives ...`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let rt = context::runtime()?;
    match cmd {
        Command::List(args) => {
            let mut archives = rt
                .block_on(client.collect_all_archives(args.session_id.as_deref()))
                .context("cannot list archives")?;
            archives.iter_mut().for_each(redact_url);
            ctx.out.emit(&archives, || print_table(&archives))
        }
        Command::Get(GetArgs { id, show_url }) => {
            let mut archive = rt
                .block_on(client.get_archive(&id))
                .with_context(|| format!("cannot get archive {id}"))?;
            if !show_url {
                redact_url(&mut archive);
            }
            ctx.out.emit(&archive, || print_archive(&archive))
        }
        Command::Start(args) => {
            let request = start_request(args);
            let archive = rt
                .block_on(client.start_archive(&request))
                .context("cannot start the archive")?;
            ctx.out.emit(&archive, || {
                println!("started archive {}", archive.id);
                print_archive(&archive);
            })
        }
        Command::Stop(IdArg { id }) => {
            let archive = rt
                .block_on(client.stop_archive(&id))
                .with_context(|| format!("cannot stop archive {id}"))?;
            ctx.out.emit(&archive, || {
                println!("stopped archive {}", archive.id);
                print_archive(&archive);
            })
        }
        Command::Delete(DeleteArgs { id, ledger }) => {
            // The ledger must be usable before the service is changed.
            let mut ledger = ledger.open(ctx).map_err(|e| crate::exit::Failure {
                code: crate::exit::LEDGER,
                message: format!("{e:#}; nothing was sent to the service"),
            })?;
            rt.block_on(client.delete_archive(&id))
                .with_context(|| format!("cannot delete archive {id}"))?;
            record_deletion(&mut ledger, &id).with_context(|| {
                format!("deleted archive {id} in the service, but cannot record it in the ledger")
            })?;
            ctx.out.emit(
                &serde_json::json!({ "id": id, "deleted": true, "ledger": ledger.path() }),
                || {
                    println!(
                        "deleted archive {id} in the service (recorded in the ledger {}; the object in your \
                         storage target stays)",
                        ledger.path().display()
                    )
                },
            )
        }
    }
}

/// Records a deletion done through the REST API: the archive's status becomes `deleted` (its history kept),
/// so `pull --all` no longer takes it, and the time of the deletion.
fn record_deletion(ledger: &mut archive_db::Ledger, id: &str) -> anyhow::Result<()> {
    let archive: Archive =
        serde_json::from_value(serde_json::json!({"id": id, "status": "deleted"}))
            .context("cannot describe the archive for the ledger")?;
    ledger.record_event(&archive_db::IncomingEvent::from_archive(
        &archive,
        archive_db::EventSource::Sync,
        "archivectl archives delete",
    ))?;
    ledger.record_remote_delete(id, time::OffsetDateTime::now_utc())?;
    Ok(())
}

fn start_request(args: StartArgs) -> StartArchiveRequest {
    let mut r = StartArchiveRequest::new(args.session_id);
    r.name = args.name;
    r.has_audio = args.no_audio.then_some(false);
    r.has_video = args.no_video.then_some(false);
    r.output_mode = args.output_mode.as_deref().map(OutputMode::from);
    r.resolution = args.resolution;
    r.layout = args.layout.as_deref().map(|t| ArchiveLayout {
        layout_type: LayoutType::from(t),
        stylesheet: args.layout_stylesheet.clone(),
        screenshare_type: None,
    });
    r.stream_mode = args.stream_mode.as_deref().map(StreamMode::from);
    r.multi_archive_tag = args.multi_archive_tag;
    r.max_bitrate = args.max_bitrate;
    r
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn encryption_label(a: &Archive) -> &'static str {
    if a.encrypted_password().is_some() {
        "yes"
    } else {
        "no"
    }
}

fn print_table(archives: &[Archive]) {
    if archives.is_empty() {
        println!("no archives");
        return;
    }
    println!(
        "{:<36}  {:<9}  {:<24}  {:>8}  {:>12}  {:<9}  NAME",
        "ID", "STATUS", "CREATED", "DURATION", "SIZE", "ENCRYPTED"
    );
    for a in archives {
        println!(
            "{:<36}  {:<9}  {:<24}  {:>7}s  {:>12}  {:<9}  {}",
            a.id,
            a.status.as_str(),
            format_ms(a.created_at),
            a.duration,
            a.size,
            encryption_label(a),
            a.name.as_deref().unwrap_or("")
        );
    }
    println!("{} archive(s)", archives.len());
}

/// A presigned download URL is shown without its query (its signature), in text and JSON (issue 11):
/// `pull` asks the service for a fresh one itself.
fn redact_url(a: &mut Archive) {
    a.url = a.url.as_deref().map(opentok_rest::model::redact_url);
}

fn print_archive(a: &Archive) {
    println!("id:          {}", a.id);
    println!("status:      {}", a.status.as_str());
    if let Some(name) = &a.name {
        println!("name:        {name}");
    }
    println!("session:     {}", a.session_id);
    println!("created:     {}", format_ms(a.created_at));
    let note = if a.encrypted_password().is_some() && a.duration == 0 {
        " (encrypted archives report 0: run `archivectl inspect` on the decrypted file)"
    } else {
        ""
    };
    println!("duration:    {} s{note}", a.duration);
    println!("size:        {} bytes", a.size);
    println!("encrypted:   {}", encryption_label(a));
    if let Some(reason) = a.reason.as_deref().filter(|r| !r.is_empty()) {
        println!("reason:      {reason}");
    }
    if let Some(url) = &a.url {
        println!("url:         {url}");
    }
    if let Some(pw) = a.encrypted_password() {
        println!("password:    {pw}");
    }
}
