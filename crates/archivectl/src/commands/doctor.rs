//! `archivectl doctor`: check the whole setup before the first failure does, one line per check.
//!
//! The checks, in order: the configuration parses (`config`); every file it names exists and the secret ones
//! are private (`files`); each private key loads (`keys`); the certificate the service encrypts for, as the
//! ledger recorded it, matches a key and is not about to expire (`certificate`); the storage target answers
//! and takes the credentials, read-only (`storage`); the service takes ours (`service`); the ledger opens, its
//! schema is current, and what waits in it (`ledger`); the callback receiver answers `/healthz` (`receiver`).
//!
//! Each check is `ok`, `warning` (works, but needs attention or is not configured) or `error`, with what to
//! do. The exit code is 0 when no check is an error, else the code of the first error (the user guide's
//! table: 2 a setting, 3 a file, 4 a key's passphrase, 5 a missing file, 6 the service, 7 the storage
//! target, 8 the ledger, 9 the service or the receiver cannot be reached).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use archive_core::cert::Certificate;
use archive_pull::RsaPrivateKey;
use serde::Serialize;

use crate::context::{self, Context, GlobalArgs};
use crate::exit::{self, Failure};
use crate::output::Output;

/// Days before a certificate's expiry from which `doctor` and `cert inspect` warn.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Arguments of `archivectl doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The callback receiver's base URL, whose `/healthz` must answer (default: `[receiver] url`).
    #[arg(long, value_name = "URL")]
    receiver_url: Option<String>,
    #[command(flatten)]
    ledger: crate::ledger_path::LedgerArgs,
}

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but needs attention (or is not configured).
    Warning,
    /// Broken: something will fail.
    Error,
}

/// One check's result.
#[derive(Debug, Serialize)]
pub struct Check {
    /// Its name (`config`, `files`, `keys`, `certificate`, `storage`, `service`, `ledger`, `receiver`).
    pub name: &'static str,
    /// ok, warning or error.
    pub status: Status,
    /// What was found and, unless ok, what to do.
    pub message: String,
    /// The exit code an error maps to.
    #[serde(skip)]
    code: u8,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            message: message.into(),
            code: 0,
        }
    }

    fn warning(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Warning,
            message: message.into(),
            code: 0,
        }
    }

    fn error(name: &'static str, code: u8, message: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Error,
            message: message.into(),
            code,
        }
    }

    /// An error check from a failure, with its exit code.
    fn failed(name: &'static str, err: &anyhow::Error) -> Self {
        Self::error(name, exit::code_for(err), one_line(err))
    }
}

/// An error and its causes on one line.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let part = cause.to_string().replace('\n', " ");
        if !parts.last().is_some_and(|prev| prev.contains(&part)) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Runs `archivectl doctor`.
pub fn run(args: Args, out: Output, global: GlobalArgs) -> anyhow::Result<()> {
    let mut checks = Vec::new();
    match Context::new(out, global) {
        Err(e) => checks.push(Check::failed("config", &e)),
        Ok(ctx) => run_checks(&args, &ctx, &mut checks),
    }
    report(out, &checks)
}

/// Prints the checks and turns the first error into the exit code.
fn report(out: Output, checks: &[Check]) -> anyhow::Result<()> {
    out.emit(&serde_json::json!({ "checks": checks }), || {
        for c in checks {
            let status = match c.status {
                Status::Ok => "ok",
                Status::Warning => "warning",
                Status::Error => "error",
            };
            println!("{status:<8}{:<12} {}", c.name, c.message);
        }
    })?;
    let errors: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == Status::Error)
        .collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(Failure {
            code: first.code,
            message: format!(
                "doctor: {} of {} checks failed ({}): fix what each error line says",
                errors.len(),
                checks.len(),
                errors.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ),
        }
        .into()),
    }
}

fn run_checks(args: &Args, ctx: &Context, checks: &mut Vec<Check>) {
    checks.push(config_check(ctx));
    checks.push(files_check(ctx));
    let (keys_check, keys) = keys_check(ctx);
    checks.push(keys_check);
    let ledger_path = args.ledger.path(ctx);
    let ledger = match args.ledger.target(ctx) {
        Ok(target) => target.exists().then(|| target.open()),
        Err(e) => Some(Err(e)),
    };
    checks.push(certificate_check(ctx, ledger.as_ref(), &ledger_path, &keys));
    let runtime = match context::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            checks.push(Check::failed("storage", &e));
            return;
        }
    };
    checks.push(runtime.block_on(storage_check(ctx)));
    checks.push(runtime.block_on(service_check(ctx)));
    checks.push(ledger_check(ledger, &ledger_path));
    let url = args
        .receiver_url
        .clone()
        .or_else(|| ctx.config.receiver.url.clone());
    checks.push(runtime.block_on(receiver_check(url)));
}

fn config_check(ctx: &Context) -> Check {
    let Some(path) = &ctx.config.source else {
        return Check::warning(
            "config",
            "no archivectl.toml found (./archivectl.toml, ~/.config/archivectl/archivectl.toml): only flags, \
             the environment and defaults apply; write one (see the user guide) or give --config",
        );
    };
    if let Err(e) = ctx.config.key_paths() {
        return Check::failed("config", &e);
    }
    let profile = ctx
        .config
        .profile_name
        .as_ref()
        .map(|p| format!(", profile {p}"))
        .unwrap_or_default();
    Check::ok("config", format!("{} parses{profile}", path.display()))
}

/// Every file the settings name: (what, path, secret).
fn named_files(ctx: &Context) -> Vec<(String, PathBuf, bool)> {
    let mut files = Vec::new();
    let g = &ctx.global;
    let c = &ctx.config;
    let mut add = |what: &str, path: Option<&PathBuf>, secret: bool| {
        if let Some(p) = path {
            files.push((what.to_string(), p.clone(), secret));
        }
    };
    add(
        "API secret file",
        g.api_secret_file
            .as_ref()
            .or(c.project.api_secret_file.as_ref()),
        true,
    );
    add(
        "application private key",
        g.private_key.as_ref().or(c.project.private_key.as_ref()),
        true,
    );
    add(
        "S3 secret access key file",
        c.target.secret_access_key_file.as_ref(),
        true,
    );
    add(
        "Azure account key file",
        c.target.account_key_file.as_ref(),
        true,
    );
    for key in c.keys.private_key.iter().flat_map(|k| k.to_vec()) {
        add("private key", Some(&key), true);
    }
    for pass in c.keys.passphrase_file.iter().flat_map(|k| k.to_vec()) {
        add("passphrase file", Some(&pass), true);
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    files.dedup_by(|a, b| a.1 == b.1);
    files
}

fn files_check(ctx: &Context) -> Check {
    let files = named_files(ctx);
    if files.is_empty() {
        return Check::ok("files", "the settings name no files");
    }
    let mut problems = Vec::new();
    let mut code = 0;
    for (what, path, secret) in &files {
        match std::fs::metadata(path) {
            Err(e) => {
                problems.push(format!("{what} {} cannot be read: {e}", path.display()));
                code = code.max(exit::IO);
            }
            Ok(m) if !m.is_file() => {
                problems.push(format!("{what} {} is not a file", path.display()));
                code = code.max(exit::IO);
            }
            Ok(m) => {
                if *secret && let Some(mode) = shared_mode(&m) {
                    problems.push(format!(
                        "{what} {} can be read by others (mode {mode:04o}): run chmod 600 {}",
                        path.display(),
                        path.display()
                    ));
                    code = code.max(exit::INVALID_INPUT);
                }
            }
        }
    }
    if problems.is_empty() {
        Check::ok(
            "files",
            format!(
                "{} files exist; the secret ones are readable by their owner only",
                files.len()
            ),
        )
    } else {
        Check::error("files", code, problems.join("; "))
    }
}

/// The file's permission bits if the group or others have any access to it.
#[cfg(unix)]
fn shared_mode(m: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn shared_mode(_m: &std::fs::Metadata) -> Option<u32> {
    None
}

fn keys_check(ctx: &Context) -> (Check, Vec<(PathBuf, RsaPrivateKey)>) {
    let Ok(candidates) = ctx.config.key_paths() else {
        return (
            Check::error(
                "keys",
                exit::USAGE,
                "see the config check: [keys] cannot be paired",
            ),
            Vec::new(),
        );
    };
    if candidates.is_empty() {
        return (
            Check::warning(
                "keys",
                "no [keys] private_key: pull, decrypt and password decrypt need --key; list your keys there",
            ),
            Vec::new(),
        );
    }
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let mut code = 0;
    let terminal = std::io::stdin().is_terminal();
    for (path, passphrase) in candidates {
        match load_key(&path, passphrase.as_deref(), terminal) {
            Ok(key) => loaded.push((path, key)),
            Err(e) => {
                if code == 0 {
                    code = exit::code_for(&e);
                }
                problems.push(one_line(&e));
            }
        }
    }
    if problems.is_empty() {
        let names: Vec<String> = loaded
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        (
            Check::ok(
                "keys",
                format!("{} private keys load: {}", loaded.len(), names.join(", ")),
            ),
            loaded,
        )
    } else {
        (Check::error("keys", code, problems.join("; ")), loaded)
    }
}

/// Loads a key, prompting for its passphrase only on a terminal.
fn load_key(
    path: &Path,
    passphrase: Option<&Path>,
    terminal: bool,
) -> anyhow::Result<RsaPrivateKey> {
    if terminal {
        return crate::secrets::load_private_key(path, passphrase);
    }
    let bytes = archive_core::keys::read_secret_file(path).map_err(|e| Failure {
        code: exit::IO,
        message: format!("cannot read private key {}: {e}", path.display()),
    })?;
    let pass = passphrase
        .map(crate::secrets::read_passphrase_file)
        .transpose()?;
    match archive_core::keys::load_private_key(&bytes, pass.as_ref()) {
        Ok(key) => Ok(key),
        Err(archive_core::keys::KeyError::PassphraseRequired) => Err(Failure {
            code: exit::WRONG_SECRET,
            message: format!(
                "private key {} is encrypted and no passphrase is available (not on a terminal): set \
                 [keys] passphrase_file",
                path.display()
            ),
        }
        .into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("private key {}", path.display()))),
    }
}

/// Whole days from now to `until` (negative once past).
pub fn days_left(until: SystemTime) -> i64 {
    let now = SystemTime::now();
    let secs = match until.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    secs.div_euclid(86_400)
}

fn certificate_check(
    ctx: &Context,
    ledger: Option<&anyhow::Result<archive_db::Ledger>>,
    ledger_path: &Path,
    keys: &[(PathBuf, RsaPrivateKey)],
) -> Check {
    const NAME: &str = "certificate";
    let Ok(project) = ctx.project_id() else {
        return Check::warning(
            NAME,
            "no project configured ([project] api_key or application_id): cannot tell which certificate the \
             service has",
        );
    };
    let ledger = match ledger {
        None => {
            return Check::warning(
                NAME,
                format!(
                    "no ledger at {} yet, so no certificate recorded: `archivectl storage set ... --certificate` \
                     or `archivectl cert rotate` records it",
                    ledger_path.display()
                ),
            );
        }
        Some(Err(_)) => {
            return Check::warning(
                NAME,
                "cannot be checked: the ledger does not open (see the ledger check)",
            );
        }
        Some(Ok(l)) => l,
    };
    let record = match ledger.active_certificate(&project, time::OffsetDateTime::now_utc()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Check::warning(
                NAME,
                format!(
                    "the ledger records no certificate in use for project {project} (encryption off, or set \
                     without archivectl): set one with `archivectl storage set ... --certificate` or \
                     `archivectl cert rotate`"
                ),
            );
        }
        Err(e) => return Check::failed(NAME, &e.into()),
    };
    let cert = match Certificate::parse(record.pem.as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            return Check::error(
                NAME,
                exit::INVALID_INPUT,
                format!("the ledger's certificate does not parse: {e}"),
            );
        }
    };
    let fingerprint = cert.sha256_fingerprint();
    let Some((key_path, _)) = keys.iter().find(|(_, k)| cert.matches(k)) else {
        return Check::error(
            NAME,
            exit::WRONG_SECRET,
            format!(
                "the service encrypts for certificate {} (sha256 {fingerprint}), which matches none of the \
                 {} keys that load: archives made now cannot be decrypted; add its key to [keys] private_key",
                record.subject,
                keys.len()
            ),
        );
    };
    let days = days_left(cert.not_after());
    let what = format!(
        "the service encrypts for {} (sha256 {fingerprint}), key {}",
        record.subject,
        key_path.display()
    );
    if days < 0 {
        Check::error(
            NAME,
            exit::INVALID_INPUT,
            format!(
                "{what}: EXPIRED on {}; run `archivectl cert rotate`",
                record.not_after
            ),
        )
    } else if days < EXPIRY_WARNING_DAYS {
        Check::warning(
            NAME,
            format!(
                "{what}: expires in {days} days ({}); run `archivectl cert rotate`",
                record.not_after
            ),
        )
    } else {
        Check::ok(
            NAME,
            format!("{what}; {days} days left (until {})", record.not_after),
        )
    }
}

async fn storage_check(ctx: &Context) -> Check {
    const NAME: &str = "storage";
    let target = match crate::target::TargetArgs::default().resolve(ctx) {
        Ok(t) => t,
        Err(e) if exit::code_for(&e) == exit::USAGE => {
            return Check::warning(NAME, format!("not configured: {}", one_line(&e)));
        }
        Err(e) => return Check::failed(NAME, &e),
    };
    let options = storage_fetch::StoreOptions {
        retries: 1,
        request_timeout: Duration::from_secs(30),
        ..ctx.store_options()
    };
    let store = match storage_fetch::Store::with_options(target, options) {
        Ok(s) => s,
        Err(e) => return Check::failed(NAME, &anyhow::Error::new(e)),
    };
    let probe = format!(
        "archivectl-doctor/probe-{}",
        hex::encode(rand::random::<[u8; 8]>())
    );
    match store.head(&probe).await {
        Ok(_) | Err(storage_fetch::Error::NotFound { .. }) => Check::ok(
            NAME,
            format!(
                "{} {} {} at {}: reachable, credentials accepted (a read-only probe; `archivectl storage \
                 check` also tries writing)",
                store.target().service_name(),
                store.target().container_kind(),
                store.target().container_name(),
                store.target().display_endpoint()
            ),
        ),
        Err(e) => Check::failed(NAME, &anyhow::Error::new(e)),
    }
}

async fn service_check(ctx: &Context) -> Check {
    const NAME: &str = "service";
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) if exit::code_for(&e) == exit::USAGE => {
            return Check::warning(NAME, format!("not configured: {}", one_line(&e)));
        }
        Err(e) => return Check::failed(NAME, &e),
    };
    match client.list_archives(0, 1, None).await {
        Ok(list) => Check::ok(
            NAME,
            format!(
                "{} accepts our credentials (project {}, {} archives)",
                client.base_url(),
                ctx.project_id().unwrap_or_default(),
                list.count
            ),
        ),
        Err(e) => {
            let err = anyhow::Error::new(e);
            Check::error(NAME, exit::code_for(&err), one_line(&err))
        }
    }
}

fn ledger_check(ledger: Option<anyhow::Result<archive_db::Ledger>>, path: &Path) -> Check {
    const NAME: &str = "ledger";
    let ledger = match ledger {
        None => {
            return Check::warning(
                NAME,
                format!(
                    "no ledger at {} yet: `callbacks serve`, `sync` and `pull` create it",
                    path.display()
                ),
            );
        }
        Some(Err(e)) => {
            return Check::error(NAME, exit::LEDGER, one_line(&e));
        }
        Some(Ok(l)) => l,
    };
    let counts = (|| -> anyhow::Result<(u32, usize, usize)> {
        Ok((
            ledger.schema_version()?,
            ledger.pending()?.len(),
            ledger.awaiting_password()?.len(),
        ))
    })();
    let (version, pending, waiting) = match counts {
        Ok(c) => c,
        Err(e) => return Check::error(NAME, exit::LEDGER, one_line(&e)),
    };
    let current = archive_db::schema::SCHEMA_VERSION;
    let what = format!(
        "{}: schema v{version}{}; {pending} archives wait for a pull",
        path.display(),
        if version == current {
            " (current)".to_string()
        } else {
            format!(" (this archivectl writes v{current})")
        }
    );
    if version != current {
        Check::error(NAME, exit::LEDGER, what)
    } else if waiting > 0 {
        Check::warning(
            NAME,
            format!(
                "{what}, {waiting} wait for a password: run `archivectl sync` (and check the receiver)"
            ),
        )
    } else {
        Check::ok(NAME, format!("{what}, none for a password"))
    }
}

async fn receiver_check(url: Option<String>) -> Check {
    const NAME: &str = "receiver";
    let Some(url) = url else {
        return Check::ok(
            NAME,
            "no receiver URL configured ([receiver] url or --receiver-url): not checked",
        );
    };
    match archive_receiver::probe_health(&url, Duration::from_secs(15)).await {
        Ok((health, status)) if (200..300).contains(&status) => {
            Check::ok(NAME, format!("{health} answers {status}"))
        }
        Ok((health, status)) => Check::error(
            NAME,
            exit::SERVICE,
            format!(
                "{health} answers {status}: is this the receiver (`archivectl callbacks serve`)?"
            ),
        ),
        Err(archive_receiver::ProbeError::Client(e)) => Check::error(NAME, exit::INTERNAL, e),
        Err(archive_receiver::ProbeError::Unreachable(e)) => Check::error(
            NAME,
            exit::UNREACHABLE,
            format!(
                "cannot reach {}/healthz: {e}; is `archivectl callbacks serve` running there?",
                url.trim_end_matches('/')
            ),
        ),
    }
}
