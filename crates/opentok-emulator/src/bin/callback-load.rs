//! `callback-load`: service-like archive callbacks against one or more receivers (see
//! `opentok_emulator::load`).
//!
//! ```text
//! callback-load --url http://127.0.0.1:8080/callbacks/archive [--url URL...] [--count 1000]
//!     [--concurrency 32] [--fanout round-robin|all] [--give-up-after 30] [--acks-out FILE] [--json]
//! ```
//!
//! Prints one summary line (or a JSON object with `--json`) on stdout; `--acks-out` gets the acknowledged archive
//! ids, one a line. Exits 0 when it ran (whatever was acknowledged), 2 on bad arguments, 1 when it could not run.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use opentok_emulator::load::{self, Fanout, LoadConfig};

/// Sends archive status callbacks like the Vonage Video service (with its retries) to receivers, and reports
/// which were acknowledged and how fast.
#[derive(Debug, Parser)]
#[command(name = "callback-load", version)]
struct Args {
    /// A receiver's callback URL; repeat for several receivers.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// How many archives (one callback each).
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Callbacks in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// `round-robin` (a retry goes to the next receiver) or `all` (every callback to every receiver at once).
    #[arg(long, default_value = "round-robin")]
    fanout: Fanout,
    /// The archives' status.
    #[arg(long, default_value = "uploaded")]
    status: String,
    /// Give a callback up this many seconds after its first try.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    give_up_after: f64,
    /// The first wait between tries, in milliseconds (doubling up to 2 s).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    initial_backoff_ms: u64,
    /// Writes the acknowledged archive ids here, one a line.
    #[arg(long, value_name = "FILE")]
    acks_out: Option<PathBuf>,
    /// The summary as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callback-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if !(args.give_up_after.is_finite() && args.give_up_after > 0.0) {
        anyhow::bail!("--give-up-after must be a positive number of seconds");
    }
    let config = LoadConfig {
        urls: args.urls,
        fanout: args.fanout,
        count: args.count,
        concurrency: args.concurrency,
        status: args.status,
        initial_backoff: Duration::from_millis(args.initial_backoff_ms.max(1)),
        give_up_after: Duration::from_secs_f64(args.give_up_after),
        ..LoadConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = runtime.block_on(load::run(config))?;
    if let Some(path) = &args.acks_out {
        let mut text = report.acked.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let out = if args.json {
        serde_json::json!({
            "sent": report.sent,
            "acked": report.acked.len(),
            "gave_up": report.gave_up.len(),
            "tries": report.tries,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "acked_per_s": report.acked_per_second(),
            "p50_ms": report.latency_quantile(0.5).as_secs_f64() * 1000.0,
            "p99_ms": report.latency_quantile(0.99).as_secs_f64() * 1000.0,
        })
        .to_string()
    } else {
        report.summary()
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}").context("cannot write to stdout")?;
    Ok(())
}
