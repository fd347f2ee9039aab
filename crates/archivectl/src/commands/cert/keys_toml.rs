//! Adding a key in front of `[keys] private_key` in archivectl.toml with `toml_edit`, so the file keeps its
//! comments, order and layout; a string becomes a list, and `passphrase_file` stays paired with the keys.

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::exit::Failure;

/// What to add: the new key's path and its passphrase file's, as they are to be written in the file.
#[derive(Debug)]
pub struct NewKey<'a> {
    /// The key's path (relative to the file's directory, or absolute).
    pub key: &'a str,
    /// Its passphrase file, if the key is encrypted.
    pub passphrase_file: Option<&'a str>,
}

/// The paths of a `private_key`/`passphrase_file` item: one string or a list of strings.
fn paths(item: Option<&Item>, what: &str) -> anyhow::Result<Option<Vec<String>>> {
    let Some(item) = item else { return Ok(None) };
    match item.as_value() {
        Some(Value::String(s)) => Ok(Some(vec![s.value().clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Failure::invalid(format!("[keys] {what} holds a non-string")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some),
        _ => Err(Failure::invalid(format!(
            "[keys] {what} is neither a path nor a list of paths"
        ))),
    }
}

/// `first` then `rest`, in place of `item` (its decoration kept), as a list.
fn prepend(item: &mut Item, first: &str, rest: &[String]) {
    match item.as_value_mut() {
        Some(Value::Array(a)) => {
            // The new first element takes the old first one's spacing; that one takes the second's.
            let first_decor = a.get(0).map(|v| v.decor().clone());
            let second_decor = a.get(1).map(|v| v.decor().clone());
            a.insert(0, first);
            if let (Some(d), Some(v)) = (first_decor, a.get_mut(0)) {
                *v.decor_mut() = d;
            }
            if let Some(v) = a.get_mut(1) {
                *v.decor_mut() = second_decor.unwrap_or_else(|| toml_edit::Decor::new(" ", ""));
            }
        }
        Some(value) => {
            let decor = value.decor().clone();
            let mut list: Array = std::iter::once(first.to_owned())
                .chain(rest.iter().cloned())
                .collect();
            *list.decor_mut() = decor;
            *value = Value::Array(list);
        }
        None => {
            let list: Array = std::iter::once(first.to_owned())
                .chain(rest.iter().cloned())
                .collect();
            *item = Item::Value(Value::Array(list));
        }
    }
}

/// The `[keys]` table to edit: the top level's, or with a profile `[profile.NAME.keys]` (made if missing).
fn keys_table<'d>(
    doc: &'d mut DocumentMut,
    profile: Option<&str>,
) -> anyhow::Result<&'d mut Table> {
    let not_table =
        |what: &str| Failure::invalid(format!("{what} in archivectl.toml is not a table"));
    let root = doc.as_table_mut();
    let parent: &mut Table = match profile {
        None => root,
        Some(name) => {
            let profiles = root
                .entry("profile")
                .or_insert_with(|| {
                    let mut t = Table::new();
                    t.set_implicit(true);
                    Item::Table(t)
                })
                .as_table_mut()
                .ok_or_else(|| not_table("[profile]"))?;
            profiles
                .entry(name)
                .or_insert_with(|| {
                    let mut t = Table::new();
                    t.set_implicit(true);
                    Item::Table(t)
                })
                .as_table_mut()
                .ok_or_else(|| not_table("[profile.NAME]"))?
        }
    };
    parent
        .entry("keys")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| not_table("[keys]"))
}

/// `text` with `new` in front of the keys (of `profile`'s `[keys]` if one is given; a profile that lists no
/// keys of its own gets the top level's after the new one, so they still decrypt older archives).
pub fn add_key(text: &str, profile: Option<&str>, new: &NewKey<'_>) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        Failure::invalid(format!(
            "archivectl.toml: {}",
            e.message().split_whitespace().collect::<Vec<_>>().join(" ")
        ))
    })?;
    let top = doc.get("keys").and_then(Item::as_table);
    let top_keys = paths(top.and_then(|t| t.get("private_key")), "private_key")?;
    let top_pass = paths(
        top.and_then(|t| t.get("passphrase_file")),
        "passphrase_file",
    )?;
    let table = keys_table(&mut doc, profile)?;
    let own_keys = paths(table.get("private_key"), "private_key")?;
    let own_pass = paths(table.get("passphrase_file"), "passphrase_file")?;
    // In a profile, what it does not set is the top level's.
    let inherited = profile.is_some();
    let (old_keys, keys_inherited) = match own_keys {
        Some(k) => (k, false),
        None if inherited => (top_keys.clone().unwrap_or_default(), top_keys.is_some()),
        None => (Vec::new(), false),
    };
    let old_pass = match own_pass {
        Some(p) => Some(p),
        None if inherited => top_pass.clone(),
        None => None,
    };

    // The passphrases, paired with the keys as `Config::key_paths` reads them.
    let new_pass: Option<Vec<String>> = match (old_pass, new.passphrase_file) {
        (None, None) => None,
        // One file for all (an unencrypted key ignores it), kept, or inherited as it is.
        (None, Some(p)) => Some(vec![p.to_owned()]),
        (Some(old), None) if old.len() == 1 => None,
        (Some(old), Some(p)) if old.len() == 1 && old[0] == p => None,
        (Some(old), Some(p)) if old.len() == 1 => Some(
            std::iter::once(p.to_owned())
                .chain(std::iter::repeat_n(old[0].clone(), old_keys.len()))
                .collect(),
        ),
        (Some(old), Some(p)) => Some(std::iter::once(p.to_owned()).chain(old).collect()),
        (Some(_), None) => {
            return Err(Failure::usage(
                "[keys] passphrase_file lists one file per key: give --passphrase-file for the new key too",
            ));
        }
    };

    let key_item = table.entry("private_key").or_insert(Item::None);
    if keys_inherited || key_item.is_none() {
        let list: Array = std::iter::once(new.key.to_owned())
            .chain(old_keys.iter().cloned())
            .collect();
        *key_item = Item::Value(Value::Array(list));
    } else {
        prepend(key_item, new.key, &old_keys);
    }
    if let Some(pass) = new_pass {
        let item = table.entry("passphrase_file").or_insert(Item::None);
        *item = match pass.as_slice() {
            [one] => {
                let decor = item.as_value().map(|v| v.decor().clone());
                let mut value = Value::from(one.as_str());
                if let Some(d) = decor {
                    *value.decor_mut() = d;
                }
                Item::Value(value)
            }
            many => {
                let decor = item.as_value().map(|v| v.decor().clone());
                let mut list: Array = many.iter().cloned().collect();
                if let Some(d) = decor {
                    *list.decor_mut() = d;
                }
                Item::Value(Value::Array(list))
            }
        };
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# Production archives.
[project]
api_key = "1"   # the project

[keys]
# The newest key first.
private_key = "old.pem"   # made in 2025
passphrase_file = "pass"

[ledger]
path = "l.sqlite3"
"#;

    #[test]
    fn the_new_key_goes_first_and_comments_stay() {
        let out = add_key(
            FILE,
            None,
            &NewKey {
                key: "new.pem",
                passphrase_file: None,
            },
        )
        .unwrap();
        assert_eq!(
            out,
            FILE.replace(
                r#"private_key = "old.pem"   # made in 2025"#,
                r#"private_key = ["new.pem", "old.pem"]   # made in 2025"#
            )
        );
        // A list grows at the front; a second passphrase file pairs one per key.
        let out = add_key(
            &out,
            None,
            &NewKey {
                key: "newer.pem",
                passphrase_file: Some("pass2"),
            },
        )
        .unwrap();
        assert!(
            out.contains(r#"private_key = ["newer.pem", "new.pem", "old.pem"]   # made in 2025"#),
            "{out}"
        );
        assert!(
            out.contains(r#"passphrase_file = ["pass2", "pass", "pass"]"#),
            "{out}"
        );
        assert!(out.starts_with("# Production archives.\n"), "{out}");
        assert!(out.contains("# The newest key first.\n"), "{out}");
        // With a list of passphrases, the new key needs its own.
        let err = add_key(
            &out,
            None,
            &NewKey {
                key: "x.pem",
                passphrase_file: None,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--passphrase-file"), "{err}");
    }

    #[test]
    fn a_profile_gets_its_own_keys_with_the_top_levels_after_the_new_one() {
        let out = add_key(
            FILE,
            Some("staging"),
            &NewKey {
                key: "staging.pem",
                passphrase_file: None,
            },
        )
        .unwrap();
        assert!(out.starts_with(FILE), "the top level is untouched: {out}");
        assert!(out.contains("[profile.staging.keys]\n"), "{out}");
        assert!(
            out.contains(r#"private_key = ["staging.pem", "old.pem"]"#),
            "{out}"
        );
        // The top level's one passphrase file still applies to the profile's keys.
        let reparsed: toml::Table = out.parse().unwrap();
        assert!(
            reparsed["profile"]["staging"]["keys"]
                .get("passphrase_file")
                .is_none(),
            "{out}"
        );
    }
}
