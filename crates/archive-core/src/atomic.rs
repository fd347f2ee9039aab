//! Output files that appear whole or not at all.
//!
//! [`AtomicFile`] writes to a temporary file beside the destination (same directory, so the final rename is
//! atomic), and [`AtomicFile::commit`] fsyncs it, renames it over the destination and fsyncs the directory.
//! Dropped without a commit — on any error, or a panic — the temporary file is removed: nothing is left at or
//! beside the destination.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written that becomes `destination` only on [`commit`](AtomicFile::commit).
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let dest = dir.path().join("out.ts");
/// let mut f = archive_core::atomic::AtomicFile::create(&dest).unwrap();
/// f.write_all(b"data").unwrap();
/// assert!(!dest.exists());
/// f.commit().unwrap();
/// assert_eq!(std::fs::read(&dest).unwrap(), b"data");
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    destination: PathBuf,
}

impl AtomicFile {
    /// Starts a temporary file in the destination's directory.
    pub fn create(destination: impl AsRef<Path>) -> io::Result<Self> {
        let destination = destination.as_ref().to_path_buf();
        let dir = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = destination.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file path", destination.display()),
            )
        })?;
        if !dir.is_dir() {
            let problem = if dir.exists() {
                format!("{} is a file, not a directory", dir.display())
            } else {
                format!("directory {} does not exist", dir.display())
            };
            return Err(io::Error::new(io::ErrorKind::NotFound, problem));
        }
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create a file in {}: {}", dir.display(), e.kind()),
                )
            })?;
        Ok(Self { temp, destination })
    }

    /// The destination this file will become.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// The temporary file's path (removed on drop, renamed away on commit).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// The open temporary file, for seeking or truncating before the commit.
    pub fn file_mut(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes, fsyncs, renames over the destination and fsyncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        self.temp.as_file_mut().flush()?;
        self.temp.as_file().sync_all()?;
        let dir = self.temp.path().parent().map(Path::to_path_buf);
        self.temp.persist(&self.destination).map_err(|e| e.error)?;
        if let Some(dir) = dir {
            // Directory fsync makes the rename durable; not every platform allows opening a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.ts");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(&[0u8; 1000]).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn commit_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.ts");
        std::fs::write(&dest, b"old").unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
