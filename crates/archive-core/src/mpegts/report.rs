//! What the inspector found: the report, its programs and streams.

use std::fmt;

use serde::Serialize;

/// What a stream carries, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
    /// Subtitles, metadata, private data.
    Data,
    /// A stream type this module does not know.
    Unknown,
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Data => "data",
            Self::Unknown => "unknown",
        })
    }
}

/// Which clock [`TsReport::duration_seconds`] was measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DurationSource {
    /// PES presentation timestamps (the content's own timeline; what ffprobe reports).
    Pts,
    /// Program clock references (no PTS was found).
    Pcr,
}

/// A program announced by the PAT, with what its PMT declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct TsProgram {
    /// The program number (`program_number` in the PAT).
    pub program_number: u16,
    /// The PID of its PMT.
    pub pmt_pid: u16,
    /// The PID carrying its PCR, once the PMT was seen (`None` if the PMT says 0x1FFF, none).
    pub pcr_pid: Option<u16>,
    /// The PIDs of its elementary streams, in PMT order (empty until the PMT is seen).
    pub stream_pids: Vec<u16>,
}

/// An elementary stream declared in a PMT, with what was measured on its PID.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct TsStream {
    /// The PID its packets carry.
    pub pid: u16,
    /// The program whose PMT declared it.
    pub program_number: u16,
    /// The PMT `stream_type` (0x1B H.264, 0x0F AAC in ADTS, 0x24 HEVC, 0x06 private PES, ...).
    pub stream_type: u8,
    /// A name for the codec: "H.264", "AAC (ADTS)", "HEVC", "MPEG audio", "Opus", ...
    pub codec: &'static str,
    /// Video, audio or data.
    pub kind: StreamKind,
    /// Packets seen on its PID.
    pub packets: u64,
    /// PES packets with a PTS seen on its PID.
    pub pes_with_pts: u64,
    /// Continuity-counter errors on its PID.
    pub continuity_errors: u64,
    /// Its first (lowest) PTS, in seconds on the 33-bit clock, like ffprobe's stream `start_time`.
    pub start_seconds: Option<f64>,
    /// Its own duration from its PTS (end of the last frame minus start), in seconds.
    pub duration_seconds: Option<f64>,
}

impl fmt::Display for TsStream {
    /// `H.264 video (PID 0x0100)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (PID {:#06x})", self.codec, self.kind, self.pid)
    }
}

/// What [`TsInspector`](super::TsInspector) found. Serializes (snake_case fields) for `archivectl inspect --json`.
///
/// Bytes add up: `bytes == packets * 188 + skipped_bytes + trailing_bytes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct TsReport {
    /// Bytes fed.
    pub bytes: u64,
    /// Whole packets that started with the sync byte (including null and errored packets).
    pub packets: u64,
    /// Bytes after the last whole packet, too few to form one. After `-nopad` decryption this is the PKCS#7
    /// padding (1 to 16 bytes) unless the stream happened to end on a packet boundary.
    pub trailing_bytes: u64,
    /// Times a packet did not start with the sync byte and the inspector had to search for the next packet.
    pub sync_losses: u64,
    /// Bytes skipped while searching for sync.
    pub skipped_bytes: u64,
    /// Packets flagged by the transport_error_indicator (not otherwise parsed).
    pub transport_errors: u64,
    /// Null packets (PID 0x1FFF, stuffing).
    pub null_packets: u64,
    /// Packets with an impossible header (reserved adaptation_field_control, adaptation field too long).
    pub malformed_packets: u64,
    /// PSI sections (PAT, PMT) rejected: bad pointer field or section length, CRC mismatch, truncation.
    pub psi_errors: u64,
    /// Continuity-counter errors over all PIDs. A counter must step by one (mod 16) on each packet with payload and
    /// stay on packets with only an adaptation field; a packet with payload may be sent twice (the duplicate is
    /// not parsed again), and a packet with the discontinuity indicator restarts the count.
    pub continuity_errors: u64,
    /// Timestamp jumps: PTS or PCR steps over [`MAX_TIMESTAMP_STEP_SECONDS`](super::MAX_TIMESTAMP_STEP_SECONDS), PTS steps back over
    /// [`MAX_TIMESTAMP_BACKSTEP_SECONDS`](super::MAX_TIMESTAMP_BACKSTEP_SECONDS), a PCR going backwards.
    pub timestamp_jumps: u64,
    /// Programs from the PAT, in order of first appearance.
    pub programs: Vec<TsProgram>,
    /// Elementary streams from the PMTs, in order of first declaration.
    pub streams: Vec<TsStream>,
    /// PIDs that carried packets but were never declared by the PAT or a PMT. The PIDs reserved for tables
    /// (0x0000 to 0x001F: PAT, CAT, DVB and ATSC SI such as the SDT that ffmpeg writes on 0x0011; 0x1FFB, ATSC PSIP)
    /// and null packets are not listed.
    pub undeclared_pids: Vec<u16>,
    /// The real duration in seconds: [`pts_duration_seconds`](Self::pts_duration_seconds), or
    /// [`pcr_duration_seconds`](Self::pcr_duration_seconds) if no PTS was found (see the module docs).
    pub duration_seconds: Option<f64>,
    /// Which clock `duration_seconds` comes from.
    pub duration_source: Option<DurationSource>,
    /// Duration from PTS: max end − min start over all PIDs carrying PES with PTS, as ffprobe's `format=duration`
    /// but with the last audio PES counted to its end (see the module docs).
    pub pts_duration_seconds: Option<f64>,
    /// Last minus first PCR of the first PID carrying PCRs (needs two PCRs).
    pub pcr_duration_seconds: Option<f64>,
}
