//! What every command's `--help` ends with: one to three real examples, the user guide's section, and
//! where the exit codes are.

/// The guide, relative to the repository (and in the release archive).
pub const GUIDE: &str = "docs/user-guide.md";

/// Examples and the guide's section (a `###` heading) for each command, by its path (`"storage set s3"`);
/// a command without its own entry takes its parent's section.
const PAGES: &[(&str, &[&str], &str)] = &[
    (
        "",
        &[
            "archivectl demo",
            "archivectl keygen --cert cert.pem --key key.pem",
            "archivectl pull --all --out-dir archives/",
        ],
        "Commands",
    ),
    (
        "decrypt",
        &[
            "archivectl decrypt --key key.pem --password-file callback.json --in archive.ts --out ARCHIVE_ID.ts",
            "archivectl decrypt --key key.pem --password-file callback.json --in archive.ts --out ARCHIVE_ID.ts --trim",
        ],
        "`archivectl decrypt`",
    ),
    (
        "password",
        &["archivectl password decrypt --key key.pem --password-file callback.json"],
        "`archivectl password decrypt`",
    ),
    (
        "password decrypt",
        &[
            "archivectl password decrypt --key key.pem --password-file callback.json",
            "archivectl password decrypt --key key.pem --password-file - --json < password.b64",
        ],
        "`archivectl password decrypt`",
    ),
    (
        "keygen",
        &[
            "archivectl keygen --cert cert.pem --key key.pem",
            "archivectl keygen --cert cert.pem --key key.pem --passphrase-file passphrase.txt --days 730",
        ],
        "`archivectl keygen`",
    ),
    (
        "cert",
        &["archivectl cert inspect cert.pem --key key.pem"],
        "`archivectl cert inspect`",
    ),
    (
        "cert rotate",
        &[
            "archivectl cert rotate --cert cert-2027.pem --key key-2027.pem --dry-run",
            "archivectl cert rotate --cert cert-2027.pem --key key-2027.pem --passphrase-file passphrase.txt",
        ],
        "`archivectl cert rotate`",
    ),
    (
        "doctor",
        &[
            "archivectl doctor",
            "archivectl doctor --profile staging --json",
        ],
        "`archivectl doctor`",
    ),
    (
        "config",
        &["archivectl config show --profile staging"],
        "`archivectl config show` and profiles",
    ),
    (
        "config show",
        &[
            "archivectl config show",
            "ARCHIVECTL_PROFILE=staging archivectl config show --json",
        ],
        "`archivectl config show` and profiles",
    ),
    (
        "cert inspect",
        &[
            "archivectl cert inspect cert.pem --key key.pem",
            "archivectl cert inspect cert.pem --json",
        ],
        "`archivectl cert inspect`",
    ),
    (
        "inspect",
        &[
            "archivectl inspect ARCHIVE_ID.ts",
            "archivectl inspect ARCHIVE_ID.ts --json",
        ],
        "`archivectl inspect`",
    ),
    (
        "demo",
        &["archivectl demo", "archivectl demo --keep demo-files"],
        "`archivectl demo`",
    ),
    (
        "storage",
        &[
            "archivectl storage check --bucket my-archives --access-key-id AKIAEXAMPLE --secret-access-key-file s3-secret.txt",
            "archivectl storage set s3 --bucket my-archives --access-key-id AKIAEXAMPLE --secret-access-key-file s3-secret.txt --certificate cert.pem",
        ],
        "`archivectl storage set`",
    ),
    (
        "storage set",
        &[
            "archivectl storage set s3 --bucket my-archives --access-key-id AKIAEXAMPLE --secret-access-key-file s3-secret.txt --certificate cert.pem",
            "archivectl storage set azure --account-name myaccount --account-key-file azure-key.txt --container archives --certificate cert.pem",
        ],
        "`archivectl storage set`",
    ),
    (
        "storage set s3",
        &[
            "archivectl storage set s3 --bucket my-archives --access-key-id AKIAEXAMPLE --secret-access-key-file s3-secret.txt --certificate cert.pem",
            "archivectl storage set s3 --bucket my-archives --endpoint https://storage.googleapis.com --access-key-id GOOGEXAMPLE --secret-access-key-file hmac-secret.txt --certificate cert.pem --fallback vonage",
        ],
        "`archivectl storage set`",
    ),
    (
        "storage set azure",
        &[
            "archivectl storage set azure --account-name myaccount --account-key-file azure-key.txt --container archives --certificate cert.pem",
        ],
        "`archivectl storage set`",
    ),
    (
        "storage check",
        &[
            "archivectl storage check --bucket my-archives --access-key-id AKIAEXAMPLE --secret-access-key-file s3-secret.txt",
            "archivectl storage check --account-name myaccount --account-key-file azure-key.txt --container archives",
        ],
        "`archivectl storage check`",
    ),
    (
        "archives",
        &[
            "archivectl archives list --json",
            "archivectl archives get ARCHIVE_ID",
        ],
        "`archivectl archives`",
    ),
    (
        "archives list",
        &[
            "archivectl archives list",
            "archivectl archives list --session-id SESSION_ID --json",
        ],
        "`archivectl archives`",
    ),
    (
        "archives get",
        &[
            "archivectl archives get ARCHIVE_ID",
            "archivectl archives get ARCHIVE_ID --json",
        ],
        "`archivectl archives`",
    ),
    (
        "archives start",
        &["archivectl archives start --session-id SESSION_ID --name \"weekly call\""],
        "`archivectl archives`",
    ),
    (
        "archives stop",
        &["archivectl archives stop ARCHIVE_ID"],
        "`archivectl archives`",
    ),
    (
        "archives delete",
        &["archivectl archives delete ARCHIVE_ID"],
        "`archivectl archives`",
    ),
    (
        "archives streams",
        &[
            "archivectl archives streams add ARCHIVE_ID STREAM_ID --no-video",
            "archivectl archives streams remove ARCHIVE_ID STREAM_ID",
        ],
        "`archivectl archives`",
    ),
    (
        "archives streams add",
        &[
            "archivectl archives streams add ARCHIVE_ID STREAM_ID",
            "archivectl archives streams add ARCHIVE_ID STREAM_ID --no-video",
        ],
        "`archivectl archives`",
    ),
    (
        "archives streams remove",
        &["archivectl archives streams remove ARCHIVE_ID STREAM_ID"],
        "`archivectl archives`",
    ),
    (
        "archives layout",
        &[
            "archivectl archives layout ARCHIVE_ID --type bestFit --screenshare-type pip",
            "archivectl archives layout ARCHIVE_ID --type custom --stylesheet layout.css",
        ],
        "`archivectl archives`",
    ),
    (
        "pull",
        &[
            "archivectl pull ARCHIVE_ID --key key.pem --out-dir archives/",
            "archivectl pull --all --parallel 2 --out-dir archives/",
            "archivectl pull --all --watch --out-dir archives/",
            "archivectl pull --all --out-url s3://decrypted-archives/2026/",
        ],
        "`archivectl pull`",
    ),
    (
        "callbacks",
        &["archivectl callbacks serve --listen 0.0.0.0:8080 --token-file callback-token.txt"],
        "`archivectl callbacks serve`",
    ),
    (
        "callbacks serve",
        &[
            "archivectl callbacks serve --listen 0.0.0.0:8080 --token-file callback-token.txt",
            "archivectl callbacks serve --listen 127.0.0.1:0",
        ],
        "`archivectl callbacks serve`",
    ),
    (
        "ledger",
        &[
            "archivectl ledger list --pending",
            "archivectl ledger show ARCHIVE_ID",
        ],
        "`archivectl ledger`",
    ),
    (
        "ledger list",
        &[
            "archivectl ledger list --pending",
            "archivectl ledger list --status uploaded --json",
        ],
        "`archivectl ledger`",
    ),
    (
        "ledger show",
        &["archivectl ledger show ARCHIVE_ID"],
        "`archivectl ledger`",
    ),
    (
        "ledger export",
        &[
            "archivectl ledger export --format csv --out ledger.csv",
            "archivectl ledger export --format json",
        ],
        "`archivectl ledger`",
    ),
    (
        "sync",
        &["archivectl sync", "archivectl sync --since 7d"],
        "`archivectl sync`",
    ),
    (
        "completions",
        &[
            "archivectl completions bash > ~/.local/share/bash-completion/completions/archivectl",
            "archivectl completions zsh > ~/.zfunc/_archivectl",
            "archivectl completions fish > ~/.config/fish/completions/archivectl.fish",
        ],
        "Shell completions and man pages",
    ),
    (
        "man",
        &["archivectl man --out-dir ~/.local/share/man/man1"],
        "Shell completions and man pages",
    ),
];

/// The text after a command's options: its examples, its guide section and the exit codes.
fn after_help(path: &str) -> Option<String> {
    let (_, examples, section) = PAGES.iter().find(|(p, _, _)| *p == path)?;
    let mut text = String::from("Examples:\n");
    // A build without the demo (`--no-default-features`) does not offer it.
    let offered = |e: &&&str| cfg!(feature = "demo") || !e.starts_with("archivectl demo");
    for example in examples.iter().filter(offered) {
        text.push_str(&shell_lines(example));
    }
    text.push_str(&format!(
        "\nGuide:      {GUIDE}, section {section}\nExit codes: {GUIDE}, section \"Exit codes\""
    ));
    Some(text)
}

/// An example as shell lines that fit the help's width (continued with `\\` before an option), so that
/// it can be copied as it is.
fn shell_lines(example: &str) -> String {
    const WIDTH: usize = 90;
    let mut lines = vec![String::from("  ")];
    for (i, word) in example.split(" --").enumerate() {
        let word = if i == 0 {
            word.to_string()
        } else {
            format!("--{word}")
        };
        let last = lines.last_mut().expect("one line at least");
        if last.trim().is_empty() || last.len() + 1 + word.len() + 2 <= WIDTH {
            if !last.trim().is_empty() {
                last.push(' ');
            }
            last.push_str(&word);
        } else {
            last.push_str(" \\");
            lines.push(format!("      {word}"));
        }
    }
    lines.join("\n") + "\n"
}

/// Attaches [`after_help`] to `cmd` and every command under it (except clap's own `help`).
pub fn attach(cmd: clap::Command) -> clap::Command {
    attach_at(cmd, "")
}

fn attach_at(mut cmd: clap::Command, path: &str) -> clap::Command {
    if let Some(text) = after_help(path) {
        cmd = cmd.after_help(text);
    }
    for sub in cmd.get_subcommands_mut() {
        let sub_path = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        *sub = attach_at(std::mem::take(sub), &sub_path);
    }
    cmd
}

/// Every section the help names, for the test that keeps them true.
#[cfg(test)]
pub fn sections() -> impl Iterator<Item = &'static str> {
    PAGES.iter().map(|(_, _, section)| *section)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_section_named_is_in_the_guide() {
        let guide = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/user-guide.md"),
        )
        .unwrap_or_default();
        assert!(guide.contains("## Exit codes"));
        for section in super::sections() {
            assert!(
                guide
                    .lines()
                    .any(|l| l.starts_with('#') && l.ends_with(section)),
                "the guide has no section {section}"
            );
        }
    }
}
