//! `archivectl archives list|get|start|stop|delete|streams|layout`: the archive REST calls, tables for people, JSON for scripts.

use anyhow::Context as _;
use opentok_rest::model::{
    Archive, ArchiveLayout, LayoutType, OutputMode, StartArchiveRequest, StreamChange, StreamMode,
    TranscriptionProperties,
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
    /// Add a stream to, or remove one from, an archive recording in manual stream mode.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Change the layout of a composed archive while it records.
    Layout(LayoutArgs),
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

/// `archives streams add|remove`
#[derive(Debug, clap::Subcommand)]
pub enum StreamsCommand {
    /// Add a stream (its audio and video unless --no-audio or --no-video).
    Add {
        /// The archive id.
        #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
        id: String,
        /// The stream id.
        #[arg(value_name = "STREAM_ID")]
        stream_id: String,
        /// Do not record the stream's audio.
        #[arg(long, conflicts_with = "no_video")]
        no_audio: bool,
        /// Do not record the stream's video.
        #[arg(long)]
        no_video: bool,
    },
    /// Remove a stream.
    Remove {
        /// The archive id.
        #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
        id: String,
        /// The stream id.
        #[arg(value_name = "STREAM_ID")]
        stream_id: String,
    },
}

/// `archives layout`
#[derive(Debug, clap::Args)]
pub struct LayoutArgs {
    /// The archive id.
    #[arg(value_name = "ARCHIVE_ID", value_parser = crate::context::archive_id_arg)]
    id: String,
    /// bestFit, pip, verticalPresentation, horizontalPresentation or custom.
    #[arg(long = "type", value_name = "TYPE", value_parser = LAYOUT_TYPES)]
    layout_type: String,
    /// A file with the CSS of a custom layout (--type custom).
    #[arg(long, value_name = "FILE")]
    stylesheet: Option<std::path::PathBuf>,
    /// The layout while a screen is shared (with --type bestFit).
    #[arg(long, value_name = "TYPE", value_parser = ["bestFit", "pip", "verticalPresentation", "horizontalPresentation"])]
    screenshare_type: Option<String>,
}

const LAYOUT_TYPES: [&str; 5] = [
    "bestFit",
    "pip",
    "verticalPresentation",
    "horizontalPresentation",
    "custom",
];

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
    /// Maximum video bitrate, bits per second (100000 to 6000000; not with --quantization-parameter).
    #[arg(long, value_name = "BPS", conflicts_with = "quantization_parameter")]
    max_bitrate: Option<u64>,
    /// Video quantization parameter, 15 (best) to 40 (smallest); not with --max-bitrate.
    #[arg(long, value_name = "QP")]
    quantization_parameter: Option<u32>,
    /// The layout while a screen is shared (with --layout bestFit).
    #[arg(long, value_name = "TYPE")]
    screenshare_type: Option<String>,
    /// Also transcribe the audio.
    #[arg(long)]
    transcription: bool,
    /// The language to transcribe, e.g. en-US (with --transcription).
    #[arg(long, value_name = "CODE", requires = "transcription")]
    transcription_language: Option<String>,
    /// Also summarize the transcription (with --transcription).
    #[arg(long, requires = "transcription")]
    transcription_summary: bool,
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
                println!("started archive {}", esc(&archive.id));
                print_archive(&archive);
            })
        }
        Command::Stop(IdArg { id }) => {
            let archive = rt
                .block_on(client.stop_archive(&id))
                .with_context(|| format!("cannot stop archive {id}"))?;
            ctx.out.emit(&archive, || {
                println!("stopped archive {}", esc(&archive.id));
                print_archive(&archive);
            })
        }
        Command::Streams(StreamsCommand::Add {
            id,
            stream_id,
            no_audio,
            no_video,
        }) => {
            let change = StreamChange::Add {
                stream_id: stream_id.clone(),
                has_audio: Some(!no_audio),
                has_video: Some(!no_video),
            };
            rt.block_on(client.change_archive_streams(&id, &change))
                .with_context(|| format!("cannot add stream {stream_id} to archive {id}"))?;
            ctx.out.emit(
                &serde_json::json!({"id": id, "streamId": stream_id, "added": true,
                    "hasAudio": !no_audio, "hasVideo": !no_video}),
                || println!("added stream {stream_id} to archive {id}"),
            )
        }
        Command::Streams(StreamsCommand::Remove { id, stream_id }) => {
            let change = StreamChange::Remove {
                stream_id: stream_id.clone(),
            };
            rt.block_on(client.change_archive_streams(&id, &change))
                .with_context(|| format!("cannot remove stream {stream_id} from archive {id}"))?;
            ctx.out.emit(
                &serde_json::json!({"id": id, "streamId": stream_id, "removed": true}),
                || println!("removed stream {stream_id} from archive {id}"),
            )
        }
        Command::Layout(args) => {
            let stylesheet =
                match &args.stylesheet {
                    Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                        format!("cannot read the stylesheet {}", path.display())
                    })?),
                    None => None,
                };
            let layout = ArchiveLayout {
                layout_type: LayoutType::from(args.layout_type.as_str()),
                stylesheet,
                screenshare_type: args.screenshare_type.as_deref().map(LayoutType::from),
            };
            let id = args.id;
            rt.block_on(client.set_archive_layout(&id, &layout))
                .with_context(|| format!("cannot change the layout of archive {id}"))?;
            ctx.out
                .emit(&serde_json::json!({"id": id, "layout": layout}), || {
                    println!("archive {id} now has layout {}", layout.layout_type)
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
        screenshare_type: args.screenshare_type.as_deref().map(LayoutType::from),
    });
    r.stream_mode = args.stream_mode.as_deref().map(StreamMode::from);
    r.multi_archive_tag = args.multi_archive_tag;
    r.max_bitrate = args.max_bitrate;
    r.quantization_parameter = args.quantization_parameter;
    r.has_transcription = args.transcription.then_some(true);
    r.transcription_properties = (args.transcription_language.is_some()
        || args.transcription_summary)
        .then(|| TranscriptionProperties {
            primary_language_code: args.transcription_language,
            has_summary: args.transcription_summary.then_some(true),
        });
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
            esc(&a.id),
            esc(a.status.as_str()),
            format_ms(a.created_at),
            a.duration,
            a.size,
            encryption_label(a),
            esc(a.name.as_deref().unwrap_or(""))
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
    println!("id:          {}", esc(&a.id));
    println!("status:      {}", esc(a.status.as_str()));
    if let Some(name) = &a.name {
        println!("name:        {}", esc(name));
    }
    println!("session:     {}", esc(&a.session_id));
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
        println!("reason:      {}", esc(reason));
    }
    if let Some(url) = &a.url {
        println!("url:         {}", esc(url));
    }
    if let Some(pw) = a.encrypted_password() {
        println!("password:    {}", esc(pw));
    }
    print_vonage_fields(a);
}

/// Text from the service, for a terminal: control characters escaped (`\u{1b}`), never sent raw (issue 11).
fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    archive_db::escape_controls(text)
}

/// The fields of today's Vonage Video API (issue 13), when the service sent them.
fn print_vonage_fields(a: &Archive) {
    let line = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            println!("{:<12} {}", format!("{label}:"), esc(&value));
        }
    };
    line(
        "application",
        a.application_id.as_ref().map(|p| p.to_string()),
    );
    line("output", a.output_mode.as_ref().map(|m| m.to_string()));
    line("streams", a.stream_mode.as_ref().map(|m| m.to_string()));
    line("resolution", a.resolution.clone());
    line("max bitrate", a.max_bitrate.map(|b| format!("{b} bps")));
    line("qp", a.quantization_parameter.map(|q| q.to_string()));
    line("multi tag", a.multi_archive_tag.clone());
    line("updated", a.updated_at.map(format_ms));
    line("sha256sum", a.sha256sum.clone());
    for s in &a.streams {
        let what = match (s.has_audio, s.has_video) {
            (Some(false), _) => "video only",
            (_, Some(false)) => "audio only",
            _ => "audio and video",
        };
        line("stream", Some(format!("{} ({what})", s.stream_id)));
    }
    if let Some(t) = &a.transcription {
        let mut text = t.status.clone().unwrap_or_else(|| "unknown".into());
        if let Some(lang) = &t.primary_language_code {
            text.push_str(&format!(", {lang}"));
        }
        if t.has_summary == Some(true) {
            text.push_str(", with summary");
        }
        if let Some(url) = &t.url {
            text.push_str(&format!(", {}", opentok_rest::model::redact_url(url)));
        }
        line("transcription", Some(text));
    }
}
