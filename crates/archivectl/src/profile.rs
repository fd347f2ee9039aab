//! Profiles: `[profile.NAME.project]`, `[profile.NAME.target]`, `[profile.NAME.keys]` and
//! `[profile.NAME.ledger]` in archivectl.toml, picked with `--profile NAME` or `ARCHIVECTL_PROFILE`.
//!
//! A profile's tables have the same keys as the top-level ones. Each key a profile sets replaces the
//! top-level one; what it leaves out comes from the top level, which stays the default when no profile is
//! picked, so a file without profiles works as before:
//!
//! ```toml
//! [project]
//! api_key = "46000000"            # production
//! api_secret_file = "prod-secret"
//!
//! [profile.staging.project]
//! api_key = "47000000"            # the rest of [project] is the top level's
//! api_secret_file = "staging-secret"
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::config::{KeysConfig, LedgerConfig, ProjectConfig, TargetConfig};
use crate::exit::Failure;

/// The environment variable that picks a profile when `--profile` is not given.
pub const PROFILE_ENV: &str = "ARCHIVECTL_PROFILE";

/// `[profile.NAME]`: the top-level tables, under a profile's name (validated like them: unknown keys are errors).
// Read by serde only: deserializing it checks a profile's tables as strictly as the top level's.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// `[profile.NAME.project]`
    #[serde(default)]
    pub project: ProjectConfig,
    /// `[profile.NAME.target]`
    #[serde(default)]
    pub target: TargetConfig,
    /// `[profile.NAME.keys]`
    #[serde(default)]
    pub keys: KeysConfig,
    /// `[profile.NAME.ledger]`
    #[serde(default)]
    pub ledger: LedgerConfig,
}

/// The effective tables of `text` (a file that parsed) for profile `name`: the top-level tables with each key
/// the profile sets put in their place, and the set of `section.key` names the profile gave.
///
/// An unknown profile is a usage error naming the profiles the file has.
pub fn overlay(
    text: &str,
    path: &Path,
    name: &str,
) -> anyhow::Result<(toml::Table, BTreeSet<String>)> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Failure::invalid(format!("config file {}: {}", path.display(), e.message()))
    })?;
    let profiles = match table.remove("profile") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let Some(toml::Value::Table(profile)) = profiles.get(name) else {
        let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
        return Err(Failure::usage(format!(
            "unknown profile {name:?}: {} has {}",
            path.display(),
            if known.is_empty() {
                "no [profile.NAME] tables".to_string()
            } else {
                format!("the profiles {}", known.join(", "))
            }
        )));
    };
    let mut given = BTreeSet::new();
    for (section, values) in profile {
        let toml::Value::Table(values) = values else {
            continue;
        };
        let top = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(top) = top {
            for (key, value) in values {
                top.insert(key.clone(), value.clone());
                given.insert(format!("{section}.{key}"));
            }
        }
    }
    Ok((table, given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_replaces_only_the_keys_it_sets() {
        let text = r#"
[project]
api_key = "1"
api_url = "https://top.example"
[keys]
private_key = "top.pem"
[profile.staging.project]
api_key = "2"
[profile.staging.ledger]
path = "staging.sqlite3"
"#;
        let (table, given) = overlay(text, Path::new("c.toml"), "staging").unwrap();
        assert_eq!(table["project"]["api_key"].as_str(), Some("2"));
        assert_eq!(
            table["project"]["api_url"].as_str(),
            Some("https://top.example")
        );
        assert_eq!(table["keys"]["private_key"].as_str(), Some("top.pem"));
        assert_eq!(table["ledger"]["path"].as_str(), Some("staging.sqlite3"));
        assert!(table.get("profile").is_none());
        assert_eq!(
            given.into_iter().collect::<Vec<_>>(),
            ["ledger.path", "project.api_key"]
        );
        let err = overlay(text, Path::new("c.toml"), "prod")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown profile \"prod\"") && err.contains("staging"),
            "{err}"
        );
    }
}
