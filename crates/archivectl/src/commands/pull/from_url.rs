//! Pulling an archive the service keeps in its own cloud: status `available`, after an upload to the
//! project's target failed with fallback `opentok`/`vonage` (or for a project without a target of its own).
//!
//! Such an archive is downloaded from its `url`, which the service presigns for a short time: the caller asks
//! the REST API for a fresh one each time. The download is one HTTP stream. An encrypted archive is decrypted
//! as it arrives into the same resumable output as a pull from a bucket; run again after an interruption,
//! it asks for the rest with a `Range` request from the last checkpoint (or, from a server that ignores
//! ranges, reads past what is done). The URL's query (its signature) is never printed nor kept.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use archive_core::PasswordBlob;
use archive_core::resume::{ResumableOutput, ResumeBinding};

use super::{FetchOptions, PlainOutput, Progress, Pulled, Stop, conclude, cpu_bound};
use crate::exit::Failure;
use crate::output::Output;

/// Downloads (and for an encrypted archive, decrypts) the archive `id` from `url` into `opts.out_dir`.
pub(crate) async fn fetch(
    url: &str,
    id: &str,
    password: Option<&str>,
    unwrap: impl FnOnce(&str) -> anyhow::Result<PasswordBlob>,
    opts: &FetchOptions,
    out: &Output,
) -> anyhow::Result<Pulled> {
    let shown = without_query(url);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .context("cannot set up the HTTP client")?;
    let first = get(&http, url, &shown, None).await?;
    let size = first
        .content_length()
        .ok_or_else(|| Failure::invalid(format!("{shown} does not say how long the archive is")))?;
    let extension = match (password.is_some(), shown.ends_with(".zip")) {
        (_, true) => "zip",
        (true, false) => "ts",
        (false, false) => "mp4",
    };
    let out_path = opts.out_dir.join(format!("{id}.{extension}"));
    let progress = Progress::new(out, id, size);
    let (summary, encrypted) = match password {
        Some(password) => {
            let blob = unwrap(password)?;
            let binding = ResumeBinding {
                archive_id: id,
                object_size: size,
                e_tag: None,
            };
            let output = ResumableOutput::open(&out_path, &binding, &blob, opts.checkpoint)
                .with_context(|| format!("cannot write {}", out_path.display()))?;
            drop(blob);
            super::say_where_it_starts(&output, &out_path);
            let offset = output.resume_offset();
            progress.set_position(offset);
            let response = if offset == 0 {
                first
            } else {
                drop(first);
                get(&http, url, &shown, Some(offset)).await?
            };
            (
                decrypt_stream(response, output, size, &out_path, &shown, opts, &progress).await?,
                true,
            )
        }
        None => (
            download_plain(first, &out_path, &shown, &progress).await?,
            false,
        ),
    };
    progress.finish();
    Ok(Pulled::new(id, shown, summary, encrypted))
}

/// `url` without its query: what may be shown of a presigned URL.
fn without_query(url: &str) -> String {
    opentok_rest::model::redact_url(url)
}

/// GET `url` (from byte `from` on, if given); a status other than 200 (or 206 for a range) is an error.
async fn get(
    http: &reqwest::Client,
    url: &str,
    shown: &str,
    from: Option<u64>,
) -> anyhow::Result<reqwest::Response> {
    let mut request = http.get(url);
    if let Some(from) = from {
        request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
    }
    let response = request.send().await.map_err(|e| Failure {
        code: crate::exit::SERVICE,
        // reqwest's text names the whole URL, signature included: never shown.
        message: format!("cannot download {shown}: {}", without_url_chain(e)),
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::NOT_FOUND {
        return Err(Failure {
            code: crate::exit::SERVICE,
            message: format!(
                "cannot download {shown}: {status} (the service's download URL has expired or the archive is gone)"
            ),
        }
        .into());
    }
    if !status.is_success() {
        return Err(Failure {
            code: crate::exit::SERVICE,
            message: format!("cannot download {shown}: {status}"),
        }
        .into());
    }
    Ok(response)
}

/// The error and its causes, `a: b: c`, without the URL (and its signature) that reqwest's text names.
fn without_url_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    opentok_rest::redact::redact_urls_in_text(&text).into_owned()
}

/// Feeds the response into `output`, 16-byte aligned, skipping what is already done if the server sent it
/// all again.
async fn decrypt_stream(
    mut response: reqwest::Response,
    mut output: ResumableOutput,
    size: u64,
    out_path: &Path,
    shown: &str,
    opts: &FetchOptions,
    progress: &Progress,
) -> anyhow::Result<archive_core::resume::ResumableSummary> {
    let offset = output.resume_offset();
    let mut skip = if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
        // `Content-Range: bytes START-END/TOTAL` must start where the checkpoint is.
        let start = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        if start != Some(offset) {
            return Err(Failure {
                code: crate::exit::SERVICE,
                message: format!(
                    "{shown} answered a request for bytes {offset}- with another range ({start:?})"
                ),
            }
            .into());
        }
        0
    } else {
        offset
    };
    let part = usize::try_from(opts.part_size).unwrap_or(4 << 20).max(16);
    let mut pending = bytes::BytesMut::with_capacity(part);
    let mut stop = Stop {
        decrypt_error: None,
        failure: None,
        interrupted: None,
    };
    let mut signals = super::signals::Signals::current();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            code = signals.stopped() => {
                stop.interrupted = Some(code);
                break;
            }
        };
        let mut chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                stop.failure =
                    Some(anyhow::Error::new(e.without_url()).context(format!("reading {shown}")));
                break;
            }
        };
        if skip > 0 {
            let n = skip.min(chunk.len() as u64);
            let _ = chunk.split_to(n as usize);
            skip -= n;
        }
        pending.extend_from_slice(&chunk);
        if pending.len() >= part {
            let aligned = pending.len() / 16 * 16;
            let mut ready = pending.split_to(aligned);
            let n = ready.len() as u64;
            if let Err(e) = cpu_bound(|| output.write_ciphertext(&mut ready)) {
                stop.decrypt_error = Some(e);
                break;
            }
            progress.inc(n);
        }
    }
    if stop.decrypt_error.is_none() && stop.interrupted.is_none() && !pending.is_empty() {
        // The object is a whole number of blocks: what is left is its end, or a cut that `conclude` reports.
        let aligned = pending.len() / 16 * 16;
        let mut ready = pending.split_to(aligned);
        let n = ready.len() as u64;
        match cpu_bound(|| output.write_ciphertext(&mut ready)) {
            Ok(()) => progress.inc(n),
            Err(e) => stop.decrypt_error = Some(e),
        }
    }
    conclude(output, stop, size, out_path, shown, opts.trim)
}

/// An unencrypted archive: downloaded as it is, atomically, with its SHA-256.
async fn download_plain(
    mut response: reqwest::Response,
    out_path: &Path,
    shown: &str,
    progress: &Progress,
) -> anyhow::Result<archive_core::resume::ResumableSummary> {
    let mut output = PlainOutput::create(out_path)?;
    let mut stop = super::signals::Signals::current();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk.map_err(reqwest::Error::without_url).with_context(|| format!("reading {shown}"))?,
            // Not resumable: the temporary file goes with `output`.
            code = stop.stopped() => return Err(Failure {
                code,
                message: format!("interrupted; nothing of {} is kept", out_path.display()),
            }
            .into()),
        };
        let Some(chunk) = chunk else { break };
        output.write(&chunk, progress)?;
    }
    output.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_of_a_presigned_url_is_never_shown() {
        assert_eq!(
            without_query("https://s3.example/1/a/archive.ts?X-Amz-Signature=abc&Expires=1"),
            "https://s3.example/1/a/archive.ts"
        );
        assert_eq!(without_query("http://h/x.mp4"), "http://h/x.mp4");
    }
}
