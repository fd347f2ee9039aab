//! What `pull` writes an unencrypted archive into ([`PlainOutput`]: atomic, hashed) and shows while it
//! downloads ([`Progress`]: a bar on a terminal, nothing otherwise).

use std::io::IsTerminal;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use archive_core::resume::ResumableSummary;
use sha2::{Digest, Sha256};

use super::cpu_bound;
use crate::output::Output;

/// An unencrypted archive being written as it arrives: atomically, with its SHA-256.
pub(crate) struct PlainOutput {
    file: archive_core::atomic::AtomicFile,
    path: PathBuf,
    hasher: Sha256,
    bytes: u64,
}

impl PlainOutput {
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let file = archive_core::atomic::AtomicFile::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    pub(crate) fn write(&mut self, chunk: &[u8], progress: &Progress) -> anyhow::Result<()> {
        cpu_bound(|| {
            self.hasher.update(chunk);
            self.file.write_all(chunk)
        })
        .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.bytes += chunk.len() as u64;
        progress.inc(chunk.len() as u64);
        Ok(())
    }

    pub(crate) fn finish(self) -> anyhow::Result<ResumableSummary> {
        self.file
            .commit()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(ResumableSummary {
            path: self.path,
            bytes: self.bytes,
            trimmed_bytes: 0,
            sha256: hex::encode(self.hasher.finalize()),
            resumed_from: 0,
            report: archive_core::mpegts::TsInspector::new().finish(),
        })
    }
}

/// A progress bar on a terminal; nothing otherwise.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub(crate) fn new(out: &Output, id: &str, size: u64) -> Self {
        if out.is_json() || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(id.chars().take(8).collect::<String>());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(Some(bar))
    }

    pub(crate) fn set_position(&self, at: u64) {
        if let Some(b) = &self.0 {
            b.set_position(at);
        }
    }

    pub(crate) fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
