//! What a Vonage application (or OpenTok project) changes on an archive while it records: the streams of an
//! archive in manual stream mode (`PATCH .../archive/{id}/streams`) and the layout of a composed archive
//! (`PUT .../archive/{id}/layout`), with the service's checks and errors.

use opentok_rest::model::{
    ArchiveLayout, ArchiveStatus, ArchiveStream, OutputMode, StreamChange, StreamMode,
};
use serde_json::Value;

use crate::error::ApiError;
use crate::state::{ArchiveRecord, Shared, now_ms};

/// The service's answer to a stream change on an archive in automatic stream mode.
pub(crate) const NOT_MANUAL: &str = "Stream mode does not support stream manipulation: the archive was started with streamMode \"auto\".";

/// Reads a `PATCH .../streams` body: exactly one of `addStream` (with `hasAudio`/`hasVideo`) or `removeStream`.
fn parse_stream_change(body: &[u8]) -> Result<StreamChange, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            "Invalid JSON: the body must be a JSON object",
        ));
    };
    match (object.get("addStream"), object.get("removeStream")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Invalid request: give addStream or removeStream, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Invalid request: addStream or removeStream is required",
            ));
        }
        (None, Some(_)) if object.contains_key("hasAudio") || object.contains_key("hasVideo") => {
            return Err(ApiError::bad_request(
                "Invalid request: hasAudio and hasVideo go with addStream only",
            ));
        }
        _ => {}
    }
    let change: StreamChange = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")))?;
    let id = match &change {
        StreamChange::Add { stream_id, .. } | StreamChange::Remove { stream_id } => stream_id,
    };
    if id.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Invalid request: the stream id is empty",
        ));
    }
    Ok(change)
}

/// The archive of `project` with this id, recording (started or paused), or the service's error.
fn recording<'a>(
    archives: &'a mut std::collections::HashMap<String, ArchiveRecord>,
    project: &str,
    id: &str,
    what: &str,
) -> Result<&'a mut ArchiveRecord, ApiError> {
    let record = archives
        .get_mut(id)
        .filter(|r| r.project == project)
        .ok_or_else(ApiError::archive_not_found)?;
    if !matches!(
        record.archive.status,
        ArchiveStatus::Started | ArchiveStatus::Paused
    ) {
        return Err(ApiError::conflict(format!(
            "Conflict. You can only change the {what} of an archive that is being recorded; this one is {}.",
            record.archive.status
        )));
    }
    Ok(record)
}

impl Shared {
    /// `PATCH .../archive/{id}/streams`: adds (or updates) or removes a stream of an archive in manual stream
    /// mode. 400 for a bad body, 404 for an unknown archive or (removing) a stream it does not have, 405 in
    /// automatic stream mode, 409 once the archive is no longer recording.
    pub(crate) fn change_streams(
        &self,
        project: &str,
        id: &str,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let change = parse_stream_change(body)?;
        let mut inner = self.lock();
        let record = recording(&mut inner.archives, project, id, "streams")?;
        if record.archive.stream_mode != Some(StreamMode::Manual) {
            return Err(ApiError::method_not_allowed(NOT_MANUAL));
        }
        let streams = &mut record.archive.streams;
        match change {
            StreamChange::Add {
                stream_id,
                has_audio,
                has_video,
            } => {
                let has_audio = has_audio.unwrap_or(true);
                let has_video = has_video.unwrap_or(true);
                if !has_audio && !has_video {
                    return Err(ApiError::bad_request(
                        "Invalid request: a stream needs audio or video (hasAudio and hasVideo are both false)",
                    ));
                }
                let stream = ArchiveStream {
                    stream_id: stream_id.clone(),
                    has_audio: Some(has_audio),
                    has_video: Some(has_video),
                };
                match streams.iter_mut().find(|s| s.stream_id == stream_id) {
                    Some(existing) => *existing = stream,
                    None => streams.push(stream),
                }
                tracing::info!(project, archive = %id, stream = %stream_id, "stream added");
            }
            StreamChange::Remove { stream_id } => {
                let before = streams.len();
                streams.retain(|s| s.stream_id != stream_id);
                if streams.len() == before {
                    return Err(ApiError::not_found(format!(
                        "Not found. The archive has no stream {stream_id:?}."
                    )));
                }
                tracing::info!(project, archive = %id, stream = %stream_id, "stream removed");
            }
        }
        record.archive.updated_at = Some(now_ms());
        drop(inner);
        self.bump();
        Ok(())
    }

    /// `PUT .../archive/{id}/layout`: changes the layout of a composed archive that is recording and answers
    /// the archive. 400 for a bad body or an individual archive, 404 for an unknown archive, 409 once it is
    /// no longer recording.
    pub(crate) fn set_layout(
        &self,
        project: &str,
        id: &str,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let layout: ArchiveLayout = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid layout: {e}")))?;
        check_layout(&layout)?;
        let mut inner = self.lock();
        let record = recording(&mut inner.archives, project, id, "layout")?;
        if record.archive.output_mode == Some(OutputMode::Individual) {
            return Err(ApiError::bad_request(
                "Invalid request: an individual stream archive has no layout",
            ));
        }
        tracing::info!(project, archive = %id, layout = %layout.layout_type, "layout changed");
        record.layout = Some(layout);
        record.archive.updated_at = Some(now_ms());
        let answer = crate::archive_json(&self.view(record));
        drop(inner);
        self.bump();
        Ok(answer)
    }
}

/// The service's layout checks, as 400s: a known type, a stylesheet exactly for `custom`, a screenshare type
/// only with `bestFit` (and itself a known type other than `custom`).
pub(crate) fn check_layout(layout: &ArchiveLayout) -> Result<(), ApiError> {
    use opentok_rest::model::LayoutType;
    if let LayoutType::Unknown(other) = &layout.layout_type {
        return Err(ApiError::bad_request(format!(
            "Invalid layout type {other:?}: must be bestFit, custom, horizontalPresentation, pip or verticalPresentation"
        )));
    }
    if let Some(bad @ (LayoutType::Unknown(_) | LayoutType::Custom)) = &layout.screenshare_type {
        return Err(ApiError::bad_request(format!(
            "Invalid screenshareType {:?}: must be bestFit, horizontalPresentation, pip or verticalPresentation",
            bad.as_str()
        )));
    }
    layout
        .check()
        .map_err(|e| ApiError::bad_request(format!("Invalid layout: {e}")))
}
