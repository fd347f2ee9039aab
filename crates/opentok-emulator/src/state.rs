//! The emulator's state: projects' upload targets, archives, test hooks, the callback log; and the archive
//! operations of the REST API on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use archive_core::PasswordBlob;
use opentok_rest::model::{
    Archive, ArchiveLayout, ArchiveStatus, OutputMode, ProjectId, StartArchiveRequest, StreamMode,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::callbacks::CallbackJob;
use crate::config::{EmulatorConfig, ProjectConfig};
use crate::error::{ApiError, STOP_CONFLICT};
use crate::media::Media;
use crate::storage::{StoredTarget, describe};

/// Resolutions the service records composed archives in.
pub(crate) const RESOLUTIONS: [&str; 6] = [
    "640x480",
    "480x640",
    "1280x720",
    "720x1280",
    "1920x1080",
    "1080x1920",
];
/// The service's default page size for listing archives, and its largest.
const DEFAULT_LIST_COUNT: usize = 50;
const MAX_LIST_COUNT: usize = 1000;

/// Faults and overrides tests ask for through `/_emulator/hooks` (or [`crate::RunningEmulator::set_hooks`]).
/// Counters are used up one per event: `failUploads: 2` fails the next two uploads.
///
/// ```
/// let hooks: opentok_emulator::Hooks = serde_json::from_str(r#"{"failUploads": 1, "reorderCallbacks": 2}"#).unwrap();
/// assert_eq!(hooks.fail_uploads, 1);
/// assert_eq!(hooks.drop_callbacks, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Hooks {
    /// The next N uploads fail as if the target had refused them.
    pub fail_uploads: u32,
    /// Every upload waits this long before it starts (the archive stays `stopped` meanwhile).
    pub upload_delay_ms: u64,
    /// The next N callbacks are never sent.
    pub drop_callbacks: u32,
    /// The next N callbacks are sent twice.
    pub duplicate_callbacks: u32,
    /// The next N callbacks are held back, then sent newest first (once N have gathered, or after
    /// [`REORDER_WINDOW`](crate::callbacks::REORDER_WINDOW) without a new one).
    pub reorder_callbacks: u32,
    /// Every callback waits this long before it is sent.
    pub callback_delay_ms: u64,
    /// Archives stopped from now on count as recorded for this many seconds (instead of the wall clock):
    /// their media is the clip repeated to that length, and their `duration` (when not encrypted) says it.
    pub recorded_seconds: Option<u64>,
    /// The next N archives processed report a `sha256sum` that is not their file's (a client's check of it
    /// must notice).
    pub wrong_sha256sum: u32,
}

/// Part of a [`Hooks`] to change; what is absent stays as it is (`recordedSeconds: null` clears the override).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HooksPatch {
    fail_uploads: Option<u32>,
    upload_delay_ms: Option<u64>,
    drop_callbacks: Option<u32>,
    duplicate_callbacks: Option<u32>,
    reorder_callbacks: Option<u32>,
    callback_delay_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    recorded_seconds: Option<Option<u64>>,
    wrong_sha256sum: Option<u32>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

impl HooksPatch {
    /// Refuses a `recordedSeconds` longer than an archive of `media` can hold (its size limit), instead of
    /// making a shorter archive than asked.
    pub(crate) fn check(&self, media: &Media) -> Result<(), ApiError> {
        if let (Some(Some(seconds)), Some(max)) = (self.recorded_seconds, media.max_recorded())
            && seconds > max.as_secs()
        {
            return Err(ApiError::bad_request(format!(
                "recordedSeconds {seconds} is above this emulator's limit of {} s (its archives are at most \
                 max_media_bytes long: raise it in the config to record longer)",
                max.as_secs()
            )));
        }
        Ok(())
    }

    pub(crate) fn apply(self, hooks: &mut Hooks) {
        if let Some(v) = self.fail_uploads {
            hooks.fail_uploads = v;
        }
        if let Some(v) = self.upload_delay_ms {
            hooks.upload_delay_ms = v;
        }
        if let Some(v) = self.drop_callbacks {
            hooks.drop_callbacks = v;
        }
        if let Some(v) = self.duplicate_callbacks {
            hooks.duplicate_callbacks = v;
        }
        if let Some(v) = self.reorder_callbacks {
            hooks.reorder_callbacks = v;
        }
        if let Some(v) = self.callback_delay_ms {
            hooks.callback_delay_ms = v;
        }
        if let Some(v) = self.recorded_seconds {
            hooks.recorded_seconds = v;
        }
        if let Some(v) = self.wrong_sha256sum {
            hooks.wrong_sha256sum = v;
        }
    }
}

/// One callback as the emulator handled it, for the state listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackRecord {
    /// The archive.
    pub archive_id: String,
    /// The status the callback reports.
    pub status: String,
    /// Where it went.
    pub url: String,
    /// Which try (1 for the first); 0 for callbacks dropped or held by a hook.
    pub attempt: u32,
    /// `delivered`, `failed`, `gave up`, `dropped` (hook) or `held` (hook, reordering).
    pub outcome: String,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// Why a try failed (no answer, timeout...).
    pub error: Option<String>,
}

/// A project as the state listing shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSnapshot {
    /// The API key or application id.
    pub id: String,
    /// `project` or `application`.
    pub kind: String,
    /// Where its callbacks go.
    pub callback_url: Option<String>,
    /// Its upload target (type, bucket or container, endpoint, fallback, whether archives are encrypted and the
    /// certificate's SHA-256), without secrets; `null` when none is set.
    pub storage: Option<Value>,
}

/// An archive as the state listing shows it: the service's view plus what happened to its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveSnapshot {
    /// The archive, as `GET .../archive/{id}` answers it (deleted ones included).
    pub archive: Archive,
    /// The project it belongs to.
    pub project: String,
    /// The key it was (or was to be) uploaded at: `{apiKey}/{archiveId}/archive.ts` etc.
    pub object_key: Option<String>,
    /// Where the upload went (`s3 http://127.0.0.1:9000 bucket b`), if it was tried.
    pub upload_target: Option<String>,
    /// Why the upload failed, if it did.
    pub upload_error: Option<String>,
    /// Whether the emulator's cloud holds a copy (no target, or fallback after a failed upload).
    pub kept_in_cloud: bool,
    /// The layout of a composed archive, as started or last set; absent for the service's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<ArchiveLayout>,
}

/// Everything the emulator holds, as `GET /_emulator/state` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// The projects.
    pub projects: Vec<ProjectSnapshot>,
    /// Every archive, newest first.
    pub archives: Vec<ArchiveSnapshot>,
    /// Every callback try, in order.
    pub callbacks: Vec<CallbackRecord>,
    /// The hooks in force.
    pub hooks: Hooks,
}

pub(crate) struct ArchiveRecord {
    pub(crate) archive: Archive,
    pub(crate) project: String,
    pub(crate) seq: u64,
    pub(crate) started: Instant,
    /// The archive's key and IV while it is being recorded and processed; dropped (zeroized) once the file is
    /// written, as the service keeps only the wrapped password.
    pub(crate) blob: Option<PasswordBlob>,
    pub(crate) object_key: Option<String>,
    pub(crate) file_name: &'static str,
    pub(crate) upload_target: Option<String>,
    pub(crate) upload_error: Option<String>,
    pub(crate) cloud_file: Option<PathBuf>,
    pub(crate) available_until_ms: Option<i64>,
    /// The layout of a composed archive, as started or last set (`PUT .../layout`).
    pub(crate) layout: Option<ArchiveLayout>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) storage: HashMap<String, StoredTarget>,
    pub(crate) callback_urls: HashMap<String, Option<String>>,
    pub(crate) archives: HashMap<String, ArchiveRecord>,
    pub(crate) seq: u64,
    pub(crate) hooks: Hooks,
    pub(crate) callbacks: Vec<CallbackRecord>,
}

/// What every handler and background task shares.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) projects: HashMap<String, ProjectConfig>,
    pub(crate) media: Media,
    pub(crate) public_url: String,
    pub(crate) cloud_dir: PathBuf,
    pub(crate) _temp_dir: Option<tempfile::TempDir>,
    pub(crate) download_key: [u8; 32],
    pub(crate) http: reqwest::Client,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) callback_tx: mpsc::UnboundedSender<CallbackJob>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) version: watch::Sender<u64>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn project_id(id: &str) -> ProjectId {
    match id.parse::<u64>() {
        Ok(n) if !id.starts_with('0') || id == "0" => ProjectId::Number(n),
        _ => ProjectId::Text(id.to_owned()),
    }
}

fn new_archive_id() -> String {
    opentok_rest::auth::new_jti()
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells waiters ([`crate::RunningEmulator::wait_for_status`]) that something changed.
    pub(crate) fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn project(&self, id: &str) -> Option<&ProjectConfig> {
        self.projects.get(id)
    }

    pub(crate) fn callback_url(&self, inner: &Inner, project: &str) -> Option<String> {
        if let Some(url) = inner.callback_urls.get(project) {
            return url.clone();
        }
        self.projects
            .get(project)
            .and_then(|p| p.callback_url.clone())
            .or_else(|| self.config.callback_url.clone())
    }

    /// The archive as the API answers it now: a fresh signed `url` while it is `available`.
    pub(crate) fn view(&self, record: &ArchiveRecord) -> Archive {
        let mut archive = record.archive.clone();
        if archive.status == ArchiveStatus::Available && record.cloud_file.is_some() {
            archive.url = Some(crate::download::signed_url(self, record));
        }
        archive
    }

    /// Marks archives kept past their retention as `expired` and removes their files.
    pub(crate) fn expire_old(&self, inner: &mut Inner) {
        let now = now_ms();
        for record in inner.archives.values_mut() {
            if record.archive.status == ArchiveStatus::Available
                && record.available_until_ms.is_some_and(|until| until <= now)
            {
                record.archive.status = ArchiveStatus::Expired;
                record.archive.url = None;
                record.archive.updated_at = Some(now);
                if let Some(file) = record.cloud_file.take() {
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }

    /// Queues the callback for the archive's current status.
    pub(crate) fn notify(&self, inner: &mut Inner, archive_id: &str) {
        let Some(record) = inner.archives.get(archive_id) else {
            return;
        };
        let Some(url) = self.callback_url(inner, &record.project) else {
            return;
        };
        let event = opentok_rest::model::ArchiveEvent::new(self.view(record));
        let body = crate::archive_json(event.archive());
        let job = CallbackJob {
            archive_id: archive_id.to_owned(),
            status: record.archive.status.to_string(),
            url,
            body: body.to_string().into_bytes(),
            project: record.project.clone(),
        };
        crate::callbacks::enqueue(self, job);
    }

    pub(crate) fn start_archive(&self, project: &str, body: &[u8]) -> Result<Value, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "Invalid JSON: the body must be a JSON object",
            ));
        }
        match value.get("sessionId") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return Err(ApiError::bad_request(
                    "Invalid session ID: sessionId is required",
                ));
            }
        }
        let request: StartArchiveRequest = serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")))?;
        let output_mode = request.output_mode.clone().unwrap_or(OutputMode::Composed);
        match &output_mode {
            OutputMode::Composed | OutputMode::Individual => {}
            OutputMode::Unknown(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid outputMode {other:?}: must be \"composed\" or \"individual\""
                )));
            }
        }
        if let Some(resolution) = &request.resolution {
            if output_mode == OutputMode::Individual {
                return Err(ApiError::bad_request(
                    "Invalid request: resolution cannot be set for individual stream archives",
                ));
            }
            if !RESOLUTIONS.contains(&resolution.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Invalid resolution {resolution:?}: must be one of {}",
                    RESOLUTIONS.join(", ")
                )));
            }
        }
        if let Some(StreamMode::Unknown(other)) = &request.stream_mode {
            return Err(ApiError::bad_request(format!(
                "Invalid streamMode {other:?}: must be \"auto\" or \"manual\""
            )));
        }
        request
            .check()
            .map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")))?;
        if let Some(layout) = &request.layout {
            crate::composition::check_layout(layout)?;
        }
        let has_audio = request.has_audio.unwrap_or(true);
        let has_video = request.has_video.unwrap_or(true);
        if !has_audio && !has_video {
            return Err(ApiError::bad_request(
                "Invalid request: an archive needs audio or video (hasAudio and hasVideo are both false)",
            ));
        }

        let mut inner = self.lock();
        if let Some(busy) = inner.archives.values().find(|r| {
            r.project == project
                && r.archive.session_id == request.session_id
                && matches!(
                    r.archive.status,
                    ArchiveStatus::Started | ArchiveStatus::Paused
                )
                && r.archive.multi_archive_tag == request.multi_archive_tag
        }) {
            tracing::debug!(archive = %busy.archive.id, "session already being recorded");
            return Err(ApiError::conflict(
                "Conflict. The session is already being recorded (give another multiArchiveTag to record it twice).",
            ));
        }
        // Encryption is decided when recording starts, by the target's certificate then; individual
        // archives are never encrypted.
        let certificate = inner
            .storage
            .get(project)
            .and_then(|t| t.certificate.clone())
            .filter(|_| output_mode == OutputMode::Composed);
        let (blob, password) = match certificate {
            Some(cert) => {
                let blob =
                    PasswordBlob::generate(&mut rand::rand_core::UnwrapErr(rand::rngs::SysRng));
                let password = archive_core::oaep::wrap_password(
                    &cert.public_key,
                    &blob,
                    &mut rand::rand_core::UnwrapErr(rand::rngs::SysRng),
                )
                .map_err(|e| ApiError::internal(format!("cannot wrap the password: {e}")))?;
                (Some(blob), password)
            }
            None => (None, String::new()),
        };
        let now = now_ms();
        let id = new_archive_id();
        let is_application = self
            .projects
            .get(project)
            .is_some_and(|p| p.kind() == "application");
        let archive = Archive {
            id: id.clone(),
            status: ArchiveStatus::Started,
            name: request.name.clone(),
            reason: Some(String::new()),
            session_id: request.session_id.clone(),
            partner_id: (!is_application).then(|| project_id(project)),
            project_id: Some(project_id(project)),
            application_id: is_application.then(|| ProjectId::Text(project.to_owned())),
            created_at: now,
            updated_at: Some(now),
            duration: 0,
            size: 0,
            has_audio: Some(has_audio),
            has_video: Some(has_video),
            has_transcription: request.has_transcription,
            output_mode: Some(output_mode.clone()),
            stream_mode: Some(request.stream_mode.clone().unwrap_or(StreamMode::Auto)),
            resolution: (output_mode == OutputMode::Composed).then(|| {
                request
                    .resolution
                    .clone()
                    .unwrap_or_else(|| "640x480".into())
            }),
            url: None,
            password: Some(password),
            sha256sum: Some(String::new()),
            multi_archive_tag: request.multi_archive_tag.clone(),
            max_bitrate: request.max_bitrate,
            quantization_parameter: request.quantization_parameter,
            event: None,
            streams: Vec::new(),
            transcription: request
                .has_transcription
                .unwrap_or(false)
                .then(|| requested_transcription(&request)),
            extra: Default::default(),
        };
        let file_name = match (&output_mode, blob.is_some()) {
            (OutputMode::Individual, _) => "archive.zip",
            (_, true) => "archive.ts",
            _ => "archive.mp4",
        };
        inner.seq += 1;
        let seq = inner.seq;
        inner.archives.insert(
            id.clone(),
            ArchiveRecord {
                archive,
                project: project.to_owned(),
                seq,
                started: Instant::now(),
                blob,
                object_key: None,
                file_name,
                upload_target: None,
                upload_error: None,
                cloud_file: None,
                available_until_ms: None,
                layout: request.layout.clone(),
            },
        );
        tracing::info!(project, archive = %id, session = %request.session_id, "archive started");
        self.notify(&mut inner, &id);
        let answer = inner
            .archives
            .get(&id)
            .map(|r| crate::archive_json(&self.view(r)))
            .unwrap_or(Value::Null);
        drop(inner);
        self.bump();
        Ok(answer)
    }

    pub(crate) fn stop_archive(
        self: &Arc<Self>,
        project: &str,
        id: &str,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let recorded_override = inner.hooks.recorded_seconds;
        let Some(record) = inner.archives.get_mut(id).filter(|r| r.project == project) else {
            return Err(ApiError::archive_not_found());
        };
        if !matches!(
            record.archive.status,
            ArchiveStatus::Started | ArchiveStatus::Paused
        ) {
            return Err(ApiError::conflict(STOP_CONFLICT));
        }
        let recorded = recorded_override
            .map(Duration::from_secs)
            .unwrap_or_else(|| record.started.elapsed());
        let encrypted = record.blob.is_some();
        let plain_len = self.media.copies_for(recorded) * self.media.clip_len();
        // The size of the file to be uploaded (a ZIP's is known once it is made).
        let object_len = if record.file_name == "archive.zip" {
            0
        } else if encrypted {
            (plain_len / 16 + 1) * 16
        } else {
            plain_len
        };
        let now = now_ms();
        record.archive.status = ArchiveStatus::Stopped;
        record.archive.reason = Some("user initiated".into());
        record.archive.updated_at = Some(now);
        // The service's known issue: encrypted archives always report a duration of 0.
        record.archive.duration = if encrypted {
            0
        } else {
            recorded.as_secs_f64().round() as u64
        };
        record.archive.size = object_len as u64;
        tracing::info!(project, archive = %id, recorded_secs = recorded.as_secs_f64(), "archive stopped");
        self.notify(&mut inner, id);
        let answer = inner
            .archives
            .get(id)
            .map(|r| crate::archive_json(&self.view(r)))
            .unwrap_or(Value::Null);
        drop(inner);
        self.bump();
        crate::pipeline::spawn(self.clone(), id.to_owned(), recorded);
        Ok(answer)
    }

    pub(crate) fn get_archive(&self, project: &str, id: &str) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        self.expire_old(&mut inner);
        inner
            .archives
            .get(id)
            .filter(|r| r.project == project)
            .map(|r| crate::archive_json(&self.view(r)))
            .ok_or_else(ApiError::archive_not_found)
    }

    pub(crate) fn list_archives(
        &self,
        project: &str,
        query: &HashMap<String, String>,
    ) -> Result<Value, ApiError> {
        let number = |name: &str, default: usize| -> Result<usize, ApiError> {
            match query.get(name).map(|v| v.trim()) {
                None | Some("") => Ok(default),
                Some(text) => text.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!("Invalid {name} {text:?}: must be a number"))
                }),
            }
        };
        let offset = number("offset", 0)?;
        let count = number("count", DEFAULT_LIST_COUNT)?.min(MAX_LIST_COUNT);
        let session = query
            .get("sessionId")
            .or_else(|| query.get("session_id"))
            .filter(|s| !s.is_empty());
        let mut inner = self.lock();
        self.expire_old(&mut inner);
        let mut matching: Vec<&ArchiveRecord> = inner
            .archives
            .values()
            .filter(|r| r.project == project && r.archive.status != ArchiveStatus::Deleted)
            .filter(|r| session.is_none_or(|s| &r.archive.session_id == s))
            .collect();
        matching.sort_by(|a, b| {
            b.archive
                .created_at
                .cmp(&a.archive.created_at)
                .then(b.seq.cmp(&a.seq))
        });
        let total = matching.len();
        let items: Vec<Value> = matching
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|r| crate::archive_json(&self.view(r)))
            .collect();
        Ok(serde_json::json!({"count": total, "items": items}))
    }

    pub(crate) fn delete_archive(&self, project: &str, id: &str) -> Result<(), ApiError> {
        let mut inner = self.lock();
        self.expire_old(&mut inner);
        let Some(record) = inner.archives.get_mut(id).filter(|r| r.project == project) else {
            return Err(ApiError::archive_not_found());
        };
        match record.archive.status {
            ArchiveStatus::Available | ArchiveStatus::Uploaded | ArchiveStatus::Deleted => {}
            ref other => {
                return Err(ApiError::conflict(format!(
                    "Conflict. You can only delete an archive that is available, uploaded or deleted; this one is {other}."
                )));
            }
        }
        record.archive.status = ArchiveStatus::Deleted;
        record.archive.url = None;
        record.archive.updated_at = Some(now_ms());
        if let Some(file) = record.cloud_file.take() {
            let _ = std::fs::remove_file(file);
        }
        tracing::info!(project, archive = %id, "archive deleted");
        drop(inner);
        self.bump();
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> StateSnapshot {
        let mut inner = self.lock();
        self.expire_old(&mut inner);
        let mut projects: Vec<ProjectSnapshot> = self
            .config
            .projects
            .iter()
            .map(|p| ProjectSnapshot {
                id: p.id.clone(),
                kind: p.kind().into(),
                callback_url: self.callback_url(&inner, &p.id),
                storage: inner.storage.get(&p.id).map(describe),
            })
            .collect();
        projects.sort_by(|a, b| a.id.cmp(&b.id));
        let mut records: Vec<&ArchiveRecord> = inner.archives.values().collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.seq));
        let archives = records
            .into_iter()
            .map(|r| ArchiveSnapshot {
                archive: self.view(r),
                project: r.project.clone(),
                object_key: r.object_key.clone(),
                upload_target: r.upload_target.clone(),
                upload_error: r.upload_error.clone(),
                kept_in_cloud: r.cloud_file.is_some(),
                layout: r.layout.clone(),
            })
            .collect();
        StateSnapshot {
            projects,
            archives,
            callbacks: inner.callbacks.clone(),
            hooks: inner.hooks.clone(),
        }
    }
}

/// The `transcription` of an archive started with `hasTranscription: true`: requested, in the language and
/// with the summary asked for (the service's default language is `en-US`).
fn requested_transcription(request: &StartArchiveRequest) -> opentok_rest::model::Transcription {
    let properties = request.transcription_properties.clone().unwrap_or_default();
    opentok_rest::model::Transcription {
        status: Some("requested".into()),
        primary_language_code: Some(
            properties
                .primary_language_code
                .unwrap_or_else(|| "en-US".into()),
        ),
        has_summary: Some(properties.has_summary.unwrap_or(false)),
        ..Default::default()
    }
}
