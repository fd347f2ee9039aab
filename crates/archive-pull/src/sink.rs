//! The one decrypt-verify-write loop ([`pump`]) and where it writes ([`Sink`]): a local file (resumable with
//! checkpoints for an encrypted archive, atomic for a plain one; `output.rs`) or a multipart upload into a
//! bucket (`bucket.rs`). Every pull, whatever its source and its output, goes through [`pump`], and its
//! cancellation point is the only one.

use bytes::BytesMut;

use crate::pipeline::Chunks;
use crate::{CancelToken, Progress, PullError, StopReason};

/// Where the loop puts an archive: it takes the object's pieces in order, decrypts and verifies each as it
/// comes, writes what may be written, and at the end concludes (completes, checkpoints or discards).
pub(crate) trait Sink {
    /// What a refused piece leaves for [`Sink::finish`] to report.
    type Error;
    /// What a whole, verified output gives.
    type Done;

    /// Whether the pieces are ciphertext, decrypted in whole 16-byte blocks (else taken as they come).
    fn decrypts(&self) -> bool;

    /// Whether what was written before a failed download is kept for the next run, so that the pieces
    /// gathered when it failed are written too.
    fn keeps_partial(&self) -> bool {
        false
    }

    /// Takes the next piece of the object (whole blocks when it decrypts, but for a cut end): decrypts it in
    /// place, verifies it, and writes it, or what of it may be written now.
    async fn write(&mut self, piece: &mut BytesMut) -> Result<(), Self::Error>;

    /// Concludes after the loop: completes a whole output, or keeps or discards what there is and says why
    /// the pull stopped short.
    async fn finish(self, ended: Ended<Self::Error>) -> Result<Self::Done, PullError>;
}

/// How the loop ended.
pub(crate) enum Ended<E> {
    /// The download gave all it had (whether that is all of the object is the sink's to check).
    Drained,
    /// The pull was cancelled.
    Cancelled(StopReason),
    /// The download failed.
    DownloadFailed(PullError),
    /// The sink refused a piece.
    WriteFailed(E),
}

/// The one decrypt-verify-write loop: each piece of `chunks` goes to `sink` as it arrives (decrypted, checked
/// and written on this task's worker, the runtime told it blocks) while the download keeps its next parts in
/// flight on another. No queue between the two: memory stays that of the download's parts. Pieces of a URL's
/// body, of any length, are gathered into whole blocks of about `part` bytes. The one cancellation point is
/// here: a cancellation is seen before the next piece, so it stops the pull at once.
pub(crate) async fn pump<S: Sink>(
    mut chunks: Chunks,
    mut sink: S,
    part: u64,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<S::Done, PullError> {
    let part = usize::try_from(part).unwrap_or(4 << 20).max(16);
    let mut pending = BytesMut::new();
    let ended = loop {
        let chunk = tokio::select! {
            biased;
            reason = cancel.cancelled() => break Ended::Cancelled(reason),
            chunk = chunks.next() => chunk,
        };
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => break Ended::DownloadFailed(e),
            None => break Ended::Drained,
        };
        let mut ready = if chunks.whole_parts() {
            match chunk.try_into_mut() {
                Ok(b) => b,
                Err(shared) => BytesMut::from(&shared[..]),
            }
        } else {
            pending.extend_from_slice(&chunk);
            if pending.len() < part {
                continue;
            }
            let aligned = pending.len() / 16 * 16;
            pending.split_to(aligned)
        };
        let n = ready.len() as u64;
        let written = sink.write(&mut ready).await;
        chunks.give_back(ready);
        if let Err(e) = written {
            break Ended::WriteFailed(e);
        }
        progress.advance(n);
    };
    let ended = match ended {
        Ended::Drained | Ended::DownloadFailed(_)
            if !pending.is_empty() && (matches!(ended, Ended::Drained) || sink.keeps_partial()) =>
        {
            // What is left is the object's end, or (a failed download) what came before the failure. An
            // encrypted object is a whole number of blocks: a cut that is not is reported by `finish`.
            let aligned = if sink.decrypts() {
                pending.len() / 16 * 16
            } else {
                pending.len()
            };
            let mut tail = pending.split_to(aligned);
            let n = tail.len() as u64;
            match sink.write(&mut tail).await {
                Ok(()) => {
                    progress.advance(n);
                    ended
                }
                Err(e) => Ended::WriteFailed(e),
            }
        }
        ended => ended,
    };
    drop(chunks);
    sink.finish(ended).await
}
