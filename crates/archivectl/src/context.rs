//! What every command may need: the global options, the configuration file, the output mode, and from them
//! the service client. Flags beat environment variables, which beat the configuration file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use opentok_rest::auth::{ApplicationCredentials, Credentials};
use secrecy::SecretString;

use crate::config::Config;
use crate::exit::Failure;
use crate::output::Output;

/// The heading of the options that are not the command's own, listed after its own in `--help`.
pub const GLOBAL_HEADING: &str = "Global options";

/// Options accepted anywhere on the command line (the service's only by the commands that call it).
#[derive(Debug, Default, clap::Args)]
pub struct GlobalArgs {
    /// Configuration file (default: ./archivectl.toml, then ~/.config/archivectl/archivectl.toml).
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "PATH", env = "ARCHIVECTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Use the settings of `[profile.NAME.*]` in the configuration file (what it leaves out: the top level's).
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "NAME", env = "ARCHIVECTL_PROFILE")]
    pub profile: Option<String>,
    /// OpenTok project API key.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "KEY", env = "OPENTOK_API_KEY")]
    pub api_key: Option<String>,
    /// The service's base URL (default `https://api.opentok.com`, or `https://video.api.vonage.com` with
    /// --application-id).
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "URL", env = "OPENTOK_API_URL")]
    pub api_url: Option<String>,
    /// File whose first line is the project's API secret (or set OPENTOK_API_SECRET). Never an argument value.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "PATH")]
    pub api_secret_file: Option<PathBuf>,
    /// Vonage application id: authenticate as the application (RS256) instead of the project.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "ID", env = "VONAGE_APPLICATION_ID")]
    pub application_id: Option<String>,
    /// The Vonage application's private key file (with --application-id).
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "PATH", env = "VONAGE_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    /// Accept plain http:// service and storage URLs on hosts other than this machine (tokens and data then
    /// cross the network unencrypted); loopback URLs never need it. Also `[project] allow_http = true`.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING)]
    pub allow_http: bool,
}

/// The ids of the options given on the command line itself (not from the environment), for `config show`.
static COMMAND_LINE: std::sync::OnceLock<std::collections::BTreeSet<String>> =
    std::sync::OnceLock::new();

/// Remembers which options of `matches` (the innermost command's, where global ones land too) came from the
/// command line rather than the environment or a default.
pub fn remember_command_line(matches: &clap::ArgMatches) {
    let ids = matches
        .ids()
        .filter(|id| {
            matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| id.as_str().to_owned())
        .collect();
    let _ = COMMAND_LINE.set(ids);
}

/// Whether the option `id` (`"api_key"`) was given on the command line (see [`remember_command_line`]).
pub fn on_command_line(id: &str) -> bool {
    COMMAND_LINE.get().is_some_and(|ids| ids.contains(id))
}

/// The resolved context of one invocation.
#[derive(Debug)]
pub struct Context {
    /// Text or JSON.
    pub out: Output,
    /// The global options as given.
    pub global: GlobalArgs,
    /// The configuration file's contents (all defaults if there is none).
    pub config: Config,
}

impl Context {
    /// Reads the configuration file named by the options (or found in the default places).
    pub fn new(out: Output, global: GlobalArgs) -> anyhow::Result<Self> {
        let config = Config::load_profile(global.config.as_deref(), global.profile.as_deref())?;
        Ok(Self {
            out,
            global,
            config,
        })
    }

    /// The credentials for the service: the application's if an application id is set, else the project's.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        if let Some(app) = self.application_id() {
            let key_path = self
                .global
                .private_key
                .clone()
                .or_else(|| self.config.project.private_key.clone())
                .ok_or_else(|| {
                    Failure::usage(
                        "--application-id needs --private-key (the application's key file)",
                    )
                })?;
            let bytes = archive_core::keys::read_secret_file(&key_path).with_context(|| {
                format!("cannot read application private key {}", key_path.display())
            })?;
            let creds = ApplicationCredentials::from_private_key_file_contents(app, &bytes, None)
                .map_err(|e| {
                Failure::invalid(format!(
                    "application private key {}: {e}",
                    key_path.display()
                ))
            })?;
            return Ok(Credentials::Application(creds));
        }
        let api_key = self.api_key()?;
        let secret = self.api_secret()?;
        Ok(Credentials::project(api_key, secret))
    }

    /// The id the service files this project's archives under (`projectId`/`partnerId`, or `applicationId`
    /// with Vonage application auth): the application id if one is set, else the API key.
    pub fn project_id(&self) -> anyhow::Result<String> {
        match self.application_id() {
            Some(app) => Ok(app),
            None => self.api_key(),
        }
    }

    /// The Vonage application id, from --application-id or `[project] application_id`.
    fn application_id(&self) -> Option<String> {
        self.global
            .application_id
            .clone()
            .or_else(|| self.config.project.application_id.clone())
    }

    /// The project API key, from --api-key, OPENTOK_API_KEY or `[project] api_key`.
    pub fn api_key(&self) -> anyhow::Result<String> {
        self.global.api_key.clone().or_else(|| self.config.project.api_key.clone()).ok_or_else(|| {
            Failure::usage("no API key: give --api-key, set OPENTOK_API_KEY, or [project] api_key in archivectl.toml")
        })
    }

    fn api_secret(&self) -> anyhow::Result<SecretString> {
        if let Some(path) = self.global.api_secret_file.as_deref() {
            return read_secret_file(path, "API secret");
        }
        if let Ok(secret) = std::env::var("OPENTOK_API_SECRET")
            && !secret.is_empty()
        {
            return Ok(SecretString::from(secret));
        }
        if let Some(path) = self.config.project.api_secret_file.as_deref() {
            return read_secret_file(path, "API secret");
        }
        Err(Failure::usage(
            "no API secret: set OPENTOK_API_SECRET, give --api-secret-file, or [project] api_secret_file in archivectl.toml",
        ))
    }

    /// Whether plain `http://` may be used on a host that is not loopback (`--allow-http`, or
    /// `[project] allow_http = true`).
    pub fn allow_http(&self) -> bool {
        self.global.allow_http || self.config.project.allow_http.unwrap_or(false)
    }

    /// Options for a storage target's store (plain HTTP as [`Context::allow_http`] says).
    pub fn store_options(&self) -> storage_fetch::StoreOptions {
        storage_fetch::StoreOptions {
            allow_http: self.allow_http(),
            ..storage_fetch::StoreOptions::default()
        }
    }

    /// The REST client for the service.
    pub fn client(&self) -> anyhow::Result<opentok_rest::Client> {
        let credentials = self.credentials()?;
        let base = self
            .global
            .api_url
            .clone()
            .or_else(|| self.config.project.api_url.clone())
            .unwrap_or_else(|| credentials.default_base_url().to_string());
        crate::exit::set_service_url(&base);
        opentok_rest::Client::builder(credentials)
            .base_url(base)
            .timeout(Duration::from_secs(60))
            .allow_http(self.allow_http())
            .build()
            .map_err(|e| {
                let hint = match &e {
                    opentok_rest::Error::InvalidBaseUrl { reason, .. }
                        if reason.starts_with("plain http://") =>
                    {
                        " (--allow-http, or [project] allow_http = true)"
                    }
                    _ => "",
                };
                Failure::invalid(format!("cannot set up the service client: {e}{hint}"))
            })
    }
}

/// Reads a secret file's first line (a trailing `\r` dropped), refusing an empty one.
pub fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<SecretString> {
    let bytes = archive_core::keys::read_secret_file(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    archive_core::keys::passphrase_from_file_contents(&bytes).map_err(|_| {
        Failure::invalid(format!(
            "{what} file {} is empty or not UTF-8 text",
            path.display()
        ))
    })
}

/// A current-thread tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The value parser of every `ARCHIVE_ID` argument: the service's id form (a UUID), checked before the id is
/// sent anywhere, looked up, or used in a file name or an object key. A mistake is a usage error (exit 2).
pub fn archive_id_arg(text: &str) -> Result<String, String> {
    opentok_rest::archive_id::validate_archive_id(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}
