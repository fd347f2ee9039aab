//! `archivectl config show`: the effective settings, where each came from (a flag, the environment, the
//! configuration file and which profile, or the default), secrets redacted.
//!
//! Only secrets' *files* are settings (paths, shown as they are); the one secret that may be a value, the
//! `OPENTOK_API_SECRET` environment variable, is shown as `<redacted>`.

use std::path::Path;

use serde::Serialize;

use crate::context::{self, Context};

/// `archivectl config ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the effective settings and where each came from (flag, environment, file and profile, default).
    Show(ShowArgs),
}

/// Arguments of `archivectl config show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    ledger: crate::ledger_path::LedgerArgs,
}

/// One effective setting.
#[derive(Debug, Serialize)]
pub struct Setting {
    /// `section.key`, as in archivectl.toml (`project.api_key`).
    pub name: String,
    /// The value (a path for files; `<redacted>` for a secret value).
    pub value: String,
    /// Where it came from: `flag --api-key`, `environment OPENTOK_API_KEY`, `file PATH`,
    /// `file PATH, profile NAME`, or `default`.
    pub source: String,
}

/// What `config show` reports.
#[derive(Debug, Serialize)]
struct Report {
    config_file: Option<String>,
    config_file_source: String,
    profile: Option<String>,
    profile_source: Option<String>,
    settings: Vec<Setting>,
}

/// Runs `archivectl config ...`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<()> {
    let Command::Show(args) = cmd;
    let settings = effective(ctx, &args.ledger);
    let file_source = if ctx.config.source.is_none() {
        "none found: defaults".to_string()
    } else if context::on_command_line("config") {
        "flag --config".to_string()
    } else if env_set("ARCHIVECTL_CONFIG") {
        "environment ARCHIVECTL_CONFIG".to_string()
    } else {
        "found in the default places".to_string()
    };
    let profile_source = ctx.config.profile_name.as_ref().map(|_| {
        if context::on_command_line("profile") {
            "flag --profile".to_string()
        } else {
            format!("environment {}", crate::profile::PROFILE_ENV)
        }
    });
    let report = Report {
        config_file: ctx.config.source.as_ref().map(|p| p.display().to_string()),
        config_file_source: file_source,
        profile: ctx.config.profile_name.clone(),
        profile_source,
        settings,
    };
    ctx.out.emit(&report, || {
        match &report.config_file {
            Some(path) => println!("config file: {path} ({})", report.config_file_source),
            None => println!("config file: none found (defaults)"),
        }
        match (&report.profile, &report.profile_source) {
            (Some(p), Some(s)) => println!("profile:     {p} ({s})"),
            _ => println!("profile:     none (the top-level tables)"),
        }
        let width = report
            .settings
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for s in &report.settings {
            println!("{:width$}  {}  ({})", s.name, s.value, s.source);
        }
    })
}

fn env_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// Where a value that is in the configuration file came from: the file, and the profile if it gave it.
fn file_source(ctx: &Context, key: &str) -> String {
    let file = ctx
        .config
        .source
        .as_deref()
        .map_or_else(|| "?".into(), |p| p.display().to_string());
    match &ctx.config.profile_name {
        Some(profile) if ctx.config.from_profile.contains(key) => {
            format!("file {file}, profile {profile}")
        }
        _ => format!("file {file}"),
    }
}

/// The effective settings, in the file's order.
fn effective(ctx: &Context, ledger: &crate::ledger_path::LedgerArgs) -> Vec<Setting> {
    let mut out = Vec::new();
    let g = &ctx.global;
    let c = &ctx.config;
    let mut push = |name: &str, value: String, source: String| {
        out.push(Setting {
            name: name.into(),
            value,
            source,
        });
    };
    // A global option that may also come from the environment, else the file.
    let flag_env_file = |id: &str, flag: &str, env: Option<&str>, given: bool, key: &str| {
        if given && context::on_command_line(id) {
            Some(format!("flag {flag}"))
        } else if given && let Some(env) = env.filter(|e| env_set(e)) {
            Some(format!("environment {env}"))
        } else if given {
            Some(format!("flag {flag}"))
        } else {
            Some(file_source(ctx, key))
        }
    };
    let path = |p: &Path| p.display().to_string();

    if let Some(v) = g.api_key.clone().or_else(|| c.project.api_key.clone()) {
        let source = flag_env_file(
            "api_key",
            "--api-key",
            Some("OPENTOK_API_KEY"),
            g.api_key.is_some(),
            "project.api_key",
        );
        push("project.api_key", v, source.unwrap_or_default());
    }
    let application = g
        .application_id
        .clone()
        .or_else(|| c.project.application_id.clone());
    match g.api_url.clone().or_else(|| c.project.api_url.clone()) {
        Some(v) => {
            let source = flag_env_file(
                "api_url",
                "--api-url",
                Some("OPENTOK_API_URL"),
                g.api_url.is_some(),
                "project.api_url",
            );
            push("project.api_url", v, source.unwrap_or_default());
        }
        None => push(
            "project.api_url",
            if application.is_some() {
                "https://video.api.vonage.com".into()
            } else {
                "https://api.opentok.com".into()
            },
            "default".into(),
        ),
    }
    if let Some(p) = &g.api_secret_file {
        push(
            "project.api_secret_file",
            path(p),
            "flag --api-secret-file".into(),
        );
    } else if env_set("OPENTOK_API_SECRET") {
        push(
            "project.api_secret",
            "<redacted>".into(),
            "environment OPENTOK_API_SECRET".into(),
        );
    } else if let Some(p) = &c.project.api_secret_file {
        push(
            "project.api_secret_file",
            path(p),
            file_source(ctx, "project.api_secret_file"),
        );
    }
    if let Some(v) = application {
        let source = flag_env_file(
            "application_id",
            "--application-id",
            Some("VONAGE_APPLICATION_ID"),
            g.application_id.is_some(),
            "project.application_id",
        );
        push("project.application_id", v, source.unwrap_or_default());
    }
    if let Some(v) = g
        .private_key
        .clone()
        .or_else(|| c.project.private_key.clone())
    {
        let source = flag_env_file(
            "private_key",
            "--private-key",
            Some("VONAGE_PRIVATE_KEY"),
            g.private_key.is_some(),
            "project.private_key",
        );
        push("project.private_key", path(&v), source.unwrap_or_default());
    }
    if g.allow_http {
        push(
            "project.allow_http",
            "true".into(),
            "flag --allow-http".into(),
        );
    } else if let Some(v) = c.project.allow_http {
        push(
            "project.allow_http",
            v.to_string(),
            file_source(ctx, "project.allow_http"),
        );
    } else {
        push("project.allow_http", "false".into(), "default".into());
    }

    let t = &c.target;
    let target: [(&str, Option<String>); 9] = [
        ("type", t.kind.clone()),
        ("bucket", t.bucket.clone()),
        ("endpoint", t.endpoint.clone()),
        ("access_key_id", t.access_key_id.clone()),
        (
            "secret_access_key_file",
            t.secret_access_key_file.as_deref().map(path),
        ),
        ("account_name", t.account_name.clone()),
        ("account_key_file", t.account_key_file.as_deref().map(path)),
        ("container", t.container.clone()),
        ("domain", t.domain.clone()),
    ];
    for (key, value) in target {
        if let Some(v) = value {
            let name = format!("target.{key}");
            let source = file_source(ctx, &name);
            push(&name, v, source);
        }
    }

    let list = |v: &crate::config::OneOrMany| {
        v.to_vec()
            .iter()
            .map(|p| path(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(v) = &c.keys.private_key {
        push(
            "keys.private_key",
            list(v),
            file_source(ctx, "keys.private_key"),
        );
    }
    if let Some(v) = &c.keys.passphrase_file {
        push(
            "keys.passphrase_file",
            list(v),
            file_source(ctx, "keys.passphrase_file"),
        );
    }

    let ledger_path = ledger.path(ctx);
    let source = if ledger.ledger.is_some() {
        if context::on_command_line("ledger") {
            "flag --ledger".to_string()
        } else {
            "environment ARCHIVECTL_LEDGER".to_string()
        }
    } else if c.ledger.url.is_some() {
        file_source(ctx, "ledger.url")
    } else if c.ledger.path.is_some() {
        file_source(ctx, "ledger.path")
    } else {
        "default".to_string()
    };
    let key = if archive_db::is_postgres_url(&ledger_path.to_string_lossy()) {
        "ledger.url"
    } else {
        "ledger.path"
    };
    push(key, path(&ledger_path), source);
    if let Some(file) = &c.ledger.password_file {
        push(
            "ledger.password_file",
            path(file),
            file_source(ctx, "ledger.password_file"),
        );
    }
    out
}
