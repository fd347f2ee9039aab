//! What a pull tells its caller while it runs: a progress observer (the library draws nothing; a CLI puts a
//! bar on a terminal) and notes or warnings worth a line (a resumed output, a discarded one, a skipped key).

/// The progress of one archive's download.
pub trait Progress: Send + Sync {
    /// Where the download (re)starts, in bytes of the object.
    fn set_position(&self, _at: u64) {}
    /// `n` more bytes are written.
    fn advance(&self, _n: u64) {}
    /// The download is over (successfully or not).
    fn finish(&self) {}
}

/// Told what pulls do. Every method has a default that does nothing, so `&()` observes nothing.
pub trait Observer: Send + Sync {
    /// A download of archive `id`, `size` bytes long, starts: the progress to report to.
    fn progress(&self, _id: &str, _size: u64) -> Box<dyn Progress> {
        Box::new(())
    }
    /// Something worth a line that is not a problem (a resumed output, an earlier one discarded and why).
    fn note(&self, _message: &str) {}
    /// Something that may be a problem but did not stop the pull (a key of the ring that cannot be loaded).
    fn warning(&self, _message: &str) {}
}

impl Progress for () {}
impl Observer for () {}
