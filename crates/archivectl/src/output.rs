//! Text for people, JSON for scripts.

use serde::Serialize;

/// Where command results go: text lines, or one JSON document on stdout.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    /// Output mode from the global `--json` flag.
    pub fn new(json: bool) -> Self {
        Self { json, quiet: false }
    }

    /// The same, silent on stderr but for errors when `quiet` (the global `-q`).
    pub fn quiet(self, quiet: bool) -> Self {
        Self { quiet, ..self }
    }

    /// Whether `-q` was given: notes, warnings and progress bars stay off stderr.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Whether JSON was asked for.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as pretty JSON if JSON was asked for, else calls `text`.
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            text();
        }
        Ok(())
    }

    /// A progress note for people, on stderr; silent in JSON mode and with `-q`.
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.json && !self.quiet {
            eprintln!("{message}");
        }
    }
}
