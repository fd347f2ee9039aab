//! MPEG-TS inspection, sans IO: is this a transport stream, what does it carry, and how long is it really.
//!
//! The service reports a duration of 0 for encrypted archives, and a wrong key decrypts to noise without any error
//! from AES-CBC. This module answers both problems from the decrypted bytes alone:
//!
//! * [`looks_like_ts`] checks the sync byte (`0x47`) at the start of each of the first [`CHECK_PACKETS`] whole
//!   188-byte packets. It is what decides "wrong key or password" before anything is written.
//! * [`TsInspector`] is fed the decrypted stream in pieces of any size, in order (so it can run beside a streaming
//!   decrypt without buffering the file), and [`TsInspector::finish`] returns a [`TsReport`]: packets, programs and
//!   streams from the PAT and PMTs, continuity-counter errors, lost sync, the bytes after the last whole packet
//!   (the PKCS#7 padding that `openssl enc -d -nopad` leaves), and the real duration.
//!
//! # How the duration is measured
//!
//! The primary measure is the content's own timeline, from the PES presentation timestamps (PTS, 90 kHz), the way
//! `ffprobe` computes `format=duration` for MPEG-TS:
//!
//! * per PID carrying PES with a PTS (declared by a PMT or not): the lowest PTS (*start*) and the highest PTS plus
//!   the duration of the PES that carries it (*end*);
//! * for AAC in ADTS and for Opus, a PES usually carries several audio frames, so they are counted (ADTS headers:
//!   1024 samples per raw data block at the ADTS rate; Opus: the control header before each packet and its TOC
//!   byte) and the PES lasts that long;
//! * for every other stream (and when a PES could not be counted: damaged, or lost packets), the PES duration is
//!   the smallest positive step between consecutive PTS of the PID, i.e. one frame (this also holds with B-frames,
//!   whose PTS are not monotonic in decode order);
//! * duration = max over PIDs of *end* − min over PIDs of *start*.
//!
//! The one difference from ffprobe is the last audio PES: ffprobe's `format=duration` (and its stream `duration`)
//! count it as one frame, while its own packet list (`-show_entries packet=pts,duration`) goes on to the end of the
//! frames that PES really holds, which is what we report. So when the audio outlasts the video we can exceed
//! ffprobe's `format=duration` by up to one audio PES less one frame (ffmpeg's muxer fills a PES with up to about
//! 0.1 to 0.4 s of audio), and agree with the end of its last packet to the sample. The oracle tests
//! (`tests/ffprobe_oracle.rs`) check both on clips ffmpeg makes: H.264 with B-frames and AAC, a PTS wrap, MPEG-2
//! and MP2, HEVC and Opus.
//!
//! PTS are 33-bit and wrap about every 26.5 hours; each PTS is unwrapped against the previous one of its PID (the
//! first against the first PTS of the file), so a wrap inside an archive costs nothing. A step forwards of more
//! than [`MAX_TIMESTAMP_STEP_SECONDS`] or backwards of more than [`MAX_TIMESTAMP_BACKSTEP_SECONDS`] (B-frames step
//! back a little; nothing else should) between consecutive PTS of a PID, or a backwards or over-long step of the
//! PCR, is counted as a timestamp jump. When there was one, the duration is instead the largest, over PIDs, sum of
//! the spans between jumps: the content's length, not the distance between unrelated clocks (a file of the same
//! clip three times over lasts three clips).
//!
//! The PCR (27 MHz program clock, also 33-bit base plus 9-bit extension) of the first PID that carries one is
//! measured too, first to last ([`TsReport::pcr_duration_seconds`]). It is a little shorter than the content (the
//! last PCR precedes the last frame's end) and is used for [`TsReport::duration_seconds`] only when no PTS was found.
//! On the committed fixture (`tests/data/clip.ts`, H.264 + AAC, 4 s) we measure 4.032 s: ffprobe's packets end at
//! 4.032 s, its `format=duration` says 4.021333 s (the last audio PES counted as one frame).
//!
//! ```
//! use archive_core::mpegts::{self, TsInspector};
//!
//! let clip = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/clip.ts")).unwrap();
//! mpegts::looks_like_ts(&clip).unwrap();
//! let mut inspector = TsInspector::new();
//! for chunk in clip.chunks(1000) {
//!     inspector.feed(chunk);
//! }
//! let report = inspector.finish();
//! assert_eq!(report.packets, clip.len() as u64 / 188);
//! assert!(report.streams.iter().any(|s| s.codec == "H.264"));
//! assert!((report.duration_seconds.unwrap() - 4.032).abs() < 0.001);
//! ```
//!
//! Nothing here panics on malformed input: garbage, truncated packets, impossible adaptation fields and PSI
//! sections with bad lengths or CRCs are counted in the report and skipped.

use std::fmt;

use serde::Serialize;

/// Length of a transport stream packet.
pub const PACKET: usize = 188;
/// The byte every packet starts with.
pub const SYNC: u8 = 0x47;
/// How many whole packets [`looks_like_ts`] checks at most.
pub const CHECK_PACKETS: usize = 8;
/// A PTS (or PCR) this much later than the previous one of its PID is a timestamp jump, not elapsed time.
pub const MAX_TIMESTAMP_STEP_SECONDS: u32 = 30;
/// A PTS this much earlier than the previous one of its PID is a timestamp jump, not B-frame reordering.
pub const MAX_TIMESTAMP_BACKSTEP_SECONDS: u32 = 2;

const PID_PAT: u16 = 0x0000;
const PID_NULL: u16 = 0x1FFF;
const PID_COUNT: usize = 0x2000;
const NO_SLOT: u16 = u16::MAX;
/// PTS/DTS: 33 bits at 90 kHz.
const PTS_MODULUS: i64 = 1 << 33;
const PTS_HZ: f64 = 90_000.0;
/// PCR: 33-bit base at 90 kHz times 300 plus a 9-bit extension, i.e. 27 MHz.
const PCR_MODULUS: i64 = PTS_MODULUS * 300;
const PCR_HZ: f64 = 27_000_000.0;
const MAX_PTS_STEP: i64 = MAX_TIMESTAMP_STEP_SECONDS as i64 * 90_000;
const MAX_PTS_BACKSTEP: i64 = MAX_TIMESTAMP_BACKSTEP_SECONDS as i64 * 90_000;
const MAX_PCR_STEP: i64 = MAX_PTS_STEP * 300;
/// PAT and PMT sections are at most 1024 bytes (section_length at most 1021).
const MAX_PSI_SECTION_LENGTH: usize = 1021;
/// A PSI assembly buffer never grows beyond this; more is garbage.
const MAX_PSI_BUFFER: usize = 4096;
/// Bytes the inspector needs in hand to resynchronize: a candidate sync byte and the next packet's.
const LOOKAHEAD: usize = PACKET + 1;
/// The largest Opus packet (RFC 6716: 48 frames of at most 1275 bytes, and their lengths).
const MAX_OPUS_PACKET: usize = 48 * 1277;
/// ADTS sampling frequencies by index.
const ADTS_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Why bytes are not MPEG-TS. Raised by [`looks_like_ts`] on the first decrypted bytes, where it almost always
/// means that the archive was decrypted with the wrong key (a wrong private key or another archive's password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    /// Fewer bytes than one packet.
    #[error(
        "only {len} bytes, less than one {PACKET}-byte MPEG-TS packet: not MPEG-TS (truncated input, or the key or \
         password is probably wrong)"
    )]
    TooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// A packet does not start with the sync byte.
    #[error(
        "byte {offset} (start of packet {packet}) is 0x{found:02x}, not the MPEG-TS sync byte 0x47: not MPEG-TS, \
         the key or password is probably wrong"
    )]
    NoSync {
        /// Offset of the byte that should be 0x47.
        offset: u64,
        /// Index of the packet it starts.
        packet: u64,
        /// The byte found there.
        found: u8,
    },
}

/// Checks that `prefix` starts like an MPEG-TS: a sync byte `0x47` at offset 0 and at every multiple of 188 that
/// starts a whole packet within `prefix`, for the first [`CHECK_PACKETS`] packets (fewer if fewer are whole).
///
/// Bytes after the last whole packet are not checked (a short archive ends with its PKCS#7 padding). At least one
/// whole packet is required. Random bytes (what a wrong key gives) pass with probability 256<sup>−k</sup> for
/// *k* checked packets: 2<sup>−64</sup> with 8 packets (1504 bytes or more), 1/256 if only one packet is present.
///
/// ```
/// use archive_core::mpegts::{self, TsError};
///
/// let mut ts = vec![0u8; 188 * 3];
/// for p in ts.chunks_mut(188) {
///     p[0] = 0x47;
/// }
/// assert!(mpegts::looks_like_ts(&ts).is_ok());
/// ts[376] = 0x12;
/// let err = mpegts::looks_like_ts(&ts).unwrap_err();
/// assert_eq!(err, TsError::NoSync { offset: 376, packet: 2, found: 0x12 });
/// assert!(err.to_string().contains("key or password is probably wrong"));
/// ```
pub fn looks_like_ts(prefix: &[u8]) -> Result<(), TsError> {
    if prefix.len() < PACKET {
        return Err(TsError::TooShort { len: prefix.len() });
    }
    for (i, packet) in prefix.chunks_exact(PACKET).take(CHECK_PACKETS).enumerate() {
        if packet[0] != SYNC {
            return Err(TsError::NoSync {
                offset: (i * PACKET) as u64,
                packet: i as u64,
                found: packet[0],
            });
        }
    }
    Ok(())
}

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

/// What [`TsInspector`] found. Serializes (snake_case fields) for `archivectl inspect --json`.
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
    /// Timestamp jumps: PTS or PCR steps over [`MAX_TIMESTAMP_STEP_SECONDS`], PTS steps back over
    /// [`MAX_TIMESTAMP_BACKSTEP_SECONDS`], a PCR going backwards.
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

/// Incremental MPEG-TS inspector: [`feed`](Self::feed) it the stream in order, in slices of any size and
/// alignment, then [`finish`](Self::finish). Memory stays small and fixed whatever the stream's length (one packet
/// of carry-over, PSI section buffers, a little state per PID).
///
/// ```
/// use archive_core::mpegts::TsInspector;
///
/// // Two null packets, fed across an unaligned boundary, and 12 bytes of padding.
/// let mut bytes = Vec::new();
/// for _ in 0..2 {
///     bytes.extend_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
///     bytes.extend_from_slice(&[0xFF; 184]);
/// }
/// bytes.extend_from_slice(&[12; 12]);
/// let mut inspector = TsInspector::new();
/// inspector.feed(&bytes[..100]);
/// inspector.feed(&bytes[100..]);
/// let report = inspector.finish();
/// assert_eq!((report.packets, report.null_packets, report.trailing_bytes), (2, 2, 12));
/// assert_eq!(report.duration_seconds, None);
/// ```
#[derive(Clone)]
pub struct TsInspector {
    /// Bytes of an incomplete packet (or a resynchronization window) carried to the next `feed`.
    carry: Vec<u8>,
    synced: bool,
    bytes: u64,
    packets: u64,
    skipped_bytes: u64,
    sync_losses: u64,
    transport_errors: u64,
    null_packets: u64,
    malformed_packets: u64,
    psi_errors: u64,
    continuity_errors: u64,
    pts_jumps: u64,
    pcr_jumps: u64,
    /// PID to index in `pids`, `NO_SLOT` if unseen.
    slots: Vec<u16>,
    pids: Vec<PidState>,
    programs: Vec<TsProgram>,
    streams: Vec<Declared>,
    /// The first PTS of the file: the reference against which each PID's first PTS is unwrapped.
    pts_anchor: Option<i64>,
    pcr: Option<PcrTrack>,
}

impl fmt::Debug for TsInspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsInspector")
            .field("bytes", &self.bytes)
            .field("packets", &self.packets)
            .field("synced", &self.synced)
            .field("pids", &self.pids.len())
            .field("programs", &self.programs.len())
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl Default for TsInspector {
    fn default() -> Self {
        Self::new()
    }
}

/// A stream as declared by a PMT.
#[derive(Debug, Clone)]
struct Declared {
    pid: u16,
    program_number: u16,
    stream_type: u8,
    codec: &'static str,
    kind: StreamKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not (yet) named by the PAT or a PMT.
    Unknown,
    /// Carries the PAT.
    Pat,
    /// Carries a PMT.
    Pmt,
    /// An elementary stream declared by a PMT.
    Elementary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continuity {
    Ok,
    Duplicate,
    Error,
}

#[derive(Debug, Clone)]
struct PidState {
    pid: u16,
    role: Role,
    packets: u64,
    last_cc: Option<u8>,
    /// The previous packet carried a payload and was in sequence: it may be repeated once.
    may_repeat: bool,
    continuity_errors: u64,
    /// PSI section assembly (PAT and PMT PIDs only).
    section: Vec<u8>,
    /// CRC of the last section accepted on this PID: a repeated table is not parsed again.
    last_crc: Option<u32>,
    /// Counts the audio frames in this PID's PES payloads (AAC in ADTS, Opus).
    frames: Option<Framing>,
    timing: Timing,
}

impl PidState {
    fn new(pid: u16) -> Self {
        Self {
            pid,
            role: if pid == PID_PAT {
                Role::Pat
            } else {
                Role::Unknown
            },
            packets: 0,
            last_cc: None,
            may_repeat: false,
            continuity_errors: 0,
            section: Vec::new(),
            last_crc: None,
            frames: None,
            timing: Timing::default(),
        }
    }

    /// Checks the continuity counter of a packet of this PID and remembers it.
    fn continuity(&mut self, cc: u8, has_payload: bool, discontinuity: bool) -> Continuity {
        let result = match self.last_cc {
            None => Continuity::Ok,
            Some(_) if discontinuity => Continuity::Ok,
            Some(last) if !has_payload => {
                if cc == last {
                    Continuity::Ok
                } else {
                    Continuity::Error
                }
            }
            Some(last) if cc == (last + 1) & 0x0F => Continuity::Ok,
            Some(last) if cc == last && self.may_repeat => Continuity::Duplicate,
            Some(_) => Continuity::Error,
        };
        self.may_repeat = has_payload && result == Continuity::Ok;
        self.last_cc = Some(cc);
        result
    }
}

/// PTS bookkeeping of one PID, in unwrapped 90 kHz ticks.
#[derive(Debug, Clone, Default)]
struct Timing {
    /// The PES being received: its PTS (unwrapped). `None` when it has none.
    open_pts: Option<i64>,
    /// PTS of the previous PES (unwrapped).
    prev_pts: Option<i64>,
    /// Smallest positive step between consecutive PTS: one frame.
    min_step: Option<i64>,
    pes_with_pts: u64,
    /// The current span between timestamp jumps.
    segment: Option<Segment>,
    /// Sum of the spans closed by timestamp jumps.
    closed_ticks: i64,
    /// Lowest PTS of the first span (unwrapped), once a jump closed it.
    first_start: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    min_pts: i64,
    max_pts: i64,
    /// Duration of the PES holding `max_pts`, when it is known exactly (ADTS).
    max_pts_duration: Option<i64>,
}

impl Timing {
    /// The end of the current span: the last frame's PTS plus its duration.
    fn segment_end(&self, seg: &Segment) -> i64 {
        seg.max_pts + seg.max_pts_duration.or(self.min_step).unwrap_or(0)
    }

    fn segment_ticks(&self) -> i64 {
        self.segment
            .map_or(0, |seg| self.segment_end(&seg) - seg.min_pts)
    }

    fn total_ticks(&self) -> i64 {
        self.closed_ticks + self.segment_ticks()
    }

    /// The lowest PTS of the first span.
    fn start(&self) -> Option<i64> {
        self.first_start.or(self.segment.map(|seg| seg.min_pts))
    }

    /// A timestamp jump: the current span ends, the next PES starts a new one.
    fn jump(&mut self) {
        if self.first_start.is_none() {
            self.first_start = self.segment.map(|seg| seg.min_pts);
        }
        self.closed_ticks += self.segment_ticks();
        self.segment = None;
    }

    /// Records a finished PES of `pts` that lasted `duration` ticks (if known).
    fn close(&mut self, pts: i64, duration: Option<i64>) {
        self.pes_with_pts += 1;
        match &mut self.segment {
            None => {
                self.segment = Some(Segment {
                    min_pts: pts,
                    max_pts: pts,
                    max_pts_duration: duration,
                })
            }
            Some(seg) => {
                seg.min_pts = seg.min_pts.min(pts);
                if pts >= seg.max_pts {
                    seg.max_pts = pts;
                    seg.max_pts_duration = duration;
                }
            }
        }
    }
}

/// Counts the audio in each PES of a PID whose PES carry several frames, so that the last one's length is known.
#[derive(Debug, Clone)]
enum Framing {
    Adts(Adts),
    Opus(Opus),
}

impl Framing {
    fn for_stream(stream_type: u8, codec: &str) -> Option<Self> {
        match (stream_type, codec) {
            (0x0F, _) => Some(Self::Adts(Adts::default())),
            (0x06, "Opus") => Some(Self::Opus(Opus::default())),
            _ => None,
        }
    }

    fn start_pes(&mut self) {
        match self {
            Self::Adts(a) => a.start_pes(),
            Self::Opus(o) => o.start_pes(),
        }
    }

    fn feed(&mut self, data: &[u8]) {
        match self {
            Self::Adts(a) => a.feed(data),
            Self::Opus(o) => o.feed(data),
        }
    }

    /// Data was lost: this PES's count cannot be trusted.
    fn fail(&mut self) {
        match self {
            Self::Adts(a) => a.ok = false,
            Self::Opus(o) => o.ok = false,
        }
    }

    fn pes_ticks(&self) -> Option<i64> {
        match self {
            Self::Adts(a) => a.pes_ticks(),
            Self::Opus(o) => o.pes_ticks(),
        }
    }
}

/// `samples` at `rate` Hz in 90 kHz ticks, rounded.
fn samples_to_ticks(samples: u64, rate: u32) -> i64 {
    ((samples * 90_000 + u64::from(rate) / 2) / u64::from(rate)) as i64
}

/// Frame counter for Opus in MPEG-TS (ETSI TS 102 366 annex: each Opus packet in a PES is preceded by a control
/// header `0x7FE` + flags, its size as a run of 0xFF bytes plus a last byte, optional trims and extension). The
/// packet's TOC byte gives the frame length and its frame count. Trims are not subtracted (as ffprobe's packet
/// durations do not subtract them).
#[derive(Debug, Clone, Default)]
struct Opus {
    state: OpusState,
    /// 48 kHz samples in the packets whose control header was in the current PES.
    samples: u64,
    ok: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum OpusState {
    /// Expecting the first byte of a control header, 0x7F.
    #[default]
    Prefix,
    /// Expecting 0b111 and the flags.
    Flags,
    /// Reading the size bytes.
    Size {
        size: usize,
        skip: usize,
        extension: bool,
    },
    /// Skipping trim bytes.
    Trims {
        size: usize,
        skip: usize,
        extension: bool,
    },
    /// Expecting the extension's length byte.
    ExtensionLength { size: usize },
    /// Skipping the extension.
    Extension { size: usize, skip: usize },
    /// Expecting the TOC byte of a packet of `size` bytes.
    Toc { size: usize },
    /// Expecting the frame count byte of a code-3 packet.
    Count { size: usize, frame: u64 },
    /// Skipping the rest of the packet.
    Payload { skip: usize },
}

impl Opus {
    fn start_pes(&mut self) {
        if !self.ok {
            self.state = OpusState::Prefix;
        }
        self.ok = true;
        self.samples = 0;
    }

    /// Samples per frame at 48 kHz for a TOC byte (RFC 6716 section 3.1).
    fn frame_samples(toc: u8) -> u64 {
        let config = toc >> 3;
        match config {
            0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
            12..=15 => [480, 960][usize::from(config % 2)],
            _ => [120, 240, 480, 960][usize::from(config % 4)],
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        use OpusState::*;
        while self.ok {
            let pending = match self.state {
                Payload { skip } | Extension { skip, .. } | Trims { skip, .. } => skip,
                _ => 0,
            };
            if pending > 0 {
                let (skip, n) = (pending, pending.min(data.len()));
                if n == 0 {
                    return;
                }
                data = &data[n..];
                self.state = match self.state {
                    Payload { .. } => Payload { skip: skip - n },
                    Extension { size, .. } => Extension {
                        size,
                        skip: skip - n,
                    },
                    Trims {
                        size, extension, ..
                    } => Trims {
                        size,
                        skip: skip - n,
                        extension,
                    },
                    other => other,
                };
                continue;
            }
            // States with nothing left to skip move on without reading.
            self.state = match self.state {
                Payload { skip: 0 } => Prefix,
                Extension { size, skip: 0 } => Toc { size },
                Trims {
                    size,
                    skip: 0,
                    extension: true,
                } => ExtensionLength { size },
                Trims {
                    size,
                    skip: 0,
                    extension: false,
                } => Toc { size },
                state => {
                    let Some((&b, rest)) = data.split_first() else {
                        return;
                    };
                    data = rest;
                    match state {
                        Prefix if b == 0x7F => Flags,
                        Flags if b & 0xE0 == 0xE0 => {
                            let trims = usize::from(b & 0x10 != 0) + usize::from(b & 0x08 != 0);
                            Size {
                                size: 0,
                                skip: 2 * trims,
                                extension: b & 0x04 != 0,
                            }
                        }
                        Size { size, .. } if size > MAX_OPUS_PACKET => {
                            self.ok = false;
                            state
                        }
                        Size {
                            size,
                            skip,
                            extension,
                        } if b == 0xFF => Size {
                            size: size + 255,
                            skip,
                            extension,
                        },
                        Size {
                            size,
                            skip,
                            extension,
                        } => Trims {
                            size: size + usize::from(b),
                            skip,
                            extension,
                        },
                        ExtensionLength { size } => Extension {
                            size,
                            skip: usize::from(b),
                        },
                        Toc { size } if size >= 1 => {
                            let frame = Self::frame_samples(b);
                            match b & 0x03 {
                                0 => {
                                    self.samples += frame;
                                    Payload { skip: size - 1 }
                                }
                                1 | 2 => {
                                    self.samples += 2 * frame;
                                    Payload { skip: size - 1 }
                                }
                                _ if size >= 2 => Count { size, frame },
                                _ => {
                                    self.ok = false;
                                    state
                                }
                            }
                        }
                        Count { size, frame } => {
                            self.samples += frame * u64::from(b & 0x3F);
                            Payload { skip: size - 2 }
                        }
                        _ => {
                            self.ok = false;
                            state
                        }
                    }
                }
            };
        }
    }

    fn pes_ticks(&self) -> Option<i64> {
        let clean = matches!(self.state, OpusState::Prefix | OpusState::Payload { .. });
        (self.ok && clean && self.samples > 0).then(|| samples_to_ticks(self.samples, 48_000))
    }
}

/// Frame counter for AAC in ADTS: walks the ADTS headers in PES payloads.
#[derive(Debug, Clone, Default)]
struct Adts {
    /// Bytes of the current frame still to skip.
    skip: usize,
    header: [u8; 7],
    header_len: usize,
    /// Samples in the frames whose header was in the current PES.
    samples: u64,
    rate: u32,
    /// False once something that is not an ADTS header was met in this PES.
    ok: bool,
}

impl Adts {
    /// A new PES starts: frames are counted again; after a failure, parsing restarts at the PES payload.
    fn start_pes(&mut self) {
        if !self.ok {
            self.skip = 0;
            self.header_len = 0;
        }
        self.ok = true;
        self.samples = 0;
    }

    fn feed(&mut self, mut data: &[u8]) {
        while self.ok && !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (7 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len < 7 {
                break;
            }
            self.header_len = 0;
            let h = self.header;
            // syncword 0xFFF, layer 00.
            let rate = ADTS_RATES.get(usize::from((h[2] >> 2) & 0x0F)).copied();
            let frame_len =
                usize::from(h[3] & 0x03) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
            match rate {
                Some(rate) if h[0] == 0xFF && h[1] & 0xF6 == 0xF0 && frame_len >= 7 => {
                    if self.rate != 0 && self.rate != rate {
                        self.ok = false;
                    }
                    self.rate = rate;
                    self.samples += 1024 * (u64::from(h[6] & 0x03) + 1);
                    self.skip = frame_len - 7;
                }
                _ => self.ok = false,
            }
        }
    }

    /// The duration of the frames counted in this PES, in 90 kHz ticks, if they were all well-formed.
    fn pes_ticks(&self) -> Option<i64> {
        (self.ok && self.header_len == 0 && self.samples > 0 && self.rate > 0)
            .then(|| samples_to_ticks(self.samples, self.rate))
    }
}

/// The PCRs of one PID, in unwrapped 27 MHz ticks.
#[derive(Debug, Clone)]
struct PcrTrack {
    pid: u16,
    first: i64,
    last: i64,
    closed_ticks: i64,
    count: u64,
}

/// `value` (a timestamp modulo `modulus`) placed on the unwrapped timeline as close as possible to `reference`.
fn unwrap_near(value: i64, reference: i64, modulus: i64) -> i64 {
    let mut step = (value - reference).rem_euclid(modulus);
    if step >= modulus / 2 {
        step -= modulus;
    }
    reference + step
}

/// A 33-bit PTS/DTS from its 5 bytes, if the marker bits are set.
fn parse_timestamp(b: &[u8]) -> Option<i64> {
    let [b0, b1, b2, b3, b4] = *b else {
        return None;
    };
    if b0 & 1 == 0 || b2 & 1 == 0 || b4 & 1 == 0 {
        return None;
    }
    Some(
        i64::from((b0 >> 1) & 0x07) << 30
            | i64::from(b1) << 22
            | i64::from(b2 >> 1) << 15
            | i64::from(b3) << 7
            | i64::from(b4 >> 1),
    )
}

/// A PCR in 27 MHz ticks from its 6 bytes.
fn parse_pcr(b: &[u8]) -> Option<i64> {
    let [b0, b1, b2, b3, b4, b5] = *b else {
        return None;
    };
    let base = i64::from(b0) << 25
        | i64::from(b1) << 17
        | i64::from(b2) << 9
        | i64::from(b3) << 1
        | i64::from(b4 >> 7);
    let extension = i64::from(b4 & 0x01) << 8 | i64::from(b5);
    Some(base * 300 + extension)
}

/// PIDs reserved for tables: PAT, CAT, TSDT, IPMP, DVB and ATSC SI (0x0000 to 0x001F), ATSC PSIP base (0x1FFB).
fn is_table_pid(pid: u16) -> bool {
    pid <= 0x001F || pid == 0x1FFB
}

/// Whether a PES with this stream_id has the optional header (with PTS); ISO/IEC 13818-1 table 2-21.
fn has_optional_pes_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32/MPEG-2 (PSI sections). Over a whole section, CRC field included, it is 0.
fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

/// Codec name and kind for a PMT stream_type and its ES descriptors.
fn describe_stream(stream_type: u8, descriptors: &[u8]) -> (&'static str, StreamKind) {
    use StreamKind::{Audio, Data, Unknown, Video};
    match stream_type {
        0x01 => ("MPEG-1 video", Video),
        0x02 => ("MPEG-2 video", Video),
        0x03 | 0x04 => ("MPEG audio", Audio),
        0x05 => ("private sections", Data),
        0x06 => describe_private_pes(descriptors),
        0x0F => ("AAC (ADTS)", Audio),
        0x10 => ("MPEG-4 Visual", Video),
        0x11 => ("AAC (LATM)", Audio),
        0x15 => ("metadata (ID3)", Data),
        0x1B => ("H.264", Video),
        0x1C => ("AAC (raw)", Audio),
        0x20 => ("H.264 (MVC)", Video),
        0x24 => ("HEVC", Video),
        0x33 => ("VVC", Video),
        0x80 => ("LPCM", Audio),
        0x81 => ("AC-3", Audio),
        0x82 | 0x85 => ("DTS", Audio),
        0x86 => ("SCTE-35", Data),
        0x83 => ("TrueHD", Audio),
        0x84 | 0x87 => ("E-AC-3", Audio),
        0xD1 => ("Dirac", Video),
        0xD2 => ("AVS2", Video),
        0xEA => ("VC-1", Video),
        _ => ("unknown", Unknown),
    }
}

/// stream_type 0x06 (private PES): the registration and DVB descriptors say what it is.
fn describe_private_pes(mut descriptors: &[u8]) -> (&'static str, StreamKind) {
    let mut found = ("private data", StreamKind::Data);
    while let [tag, len, rest @ ..] = descriptors {
        let Some(body) = rest.get(..usize::from(*len)) else {
            break;
        };
        let named = match (*tag, body) {
            (0x05, [a, b, c, d, ..]) => match &[*a, *b, *c, *d] {
                b"Opus" => Some(("Opus", StreamKind::Audio)),
                b"AC-3" => Some(("AC-3", StreamKind::Audio)),
                b"EAC3" => Some(("E-AC-3", StreamKind::Audio)),
                b"HEVC" => Some(("HEVC", StreamKind::Video)),
                b"VC-1" => Some(("VC-1", StreamKind::Video)),
                b"BSSD" => Some(("SMPTE 302M audio", StreamKind::Audio)),
                b"KLVA" => Some(("KLV metadata", StreamKind::Data)),
                b"ID3 " => Some(("metadata (ID3)", StreamKind::Data)),
                _ => None,
            },
            (0x6A, _) => Some(("AC-3", StreamKind::Audio)),
            (0x7A, _) => Some(("E-AC-3", StreamKind::Audio)),
            (0x7B, _) => Some(("DTS", StreamKind::Audio)),
            (0x56, _) => Some(("teletext", StreamKind::Data)),
            (0x59, _) => Some(("DVB subtitles", StreamKind::Data)),
            (0x7F, [0x80, ..]) => Some(("Opus", StreamKind::Audio)),
            _ => None,
        };
        if let Some(named) = named {
            found = named;
            break;
        }
        descriptors = &rest[usize::from(*len)..];
    }
    found
}

impl TsInspector {
    /// An inspector expecting the first byte of a transport stream.
    pub fn new() -> Self {
        Self {
            carry: Vec::with_capacity(LOOKAHEAD),
            synced: true,
            bytes: 0,
            packets: 0,
            skipped_bytes: 0,
            sync_losses: 0,
            transport_errors: 0,
            null_packets: 0,
            malformed_packets: 0,
            psi_errors: 0,
            continuity_errors: 0,
            pts_jumps: 0,
            pcr_jumps: 0,
            slots: vec![NO_SLOT; PID_COUNT],
            pids: Vec::new(),
            programs: Vec::new(),
            streams: Vec::new(),
            pts_anchor: None,
            pcr: None,
        }
    }

    /// Feeds the next bytes of the stream. Slices may have any length and may cut packets anywhere.
    pub fn feed(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        let mut data = data;
        // First complete what was carried over, copying only as much as that needs.
        while !self.carry.is_empty() {
            if data.is_empty() {
                return;
            }
            let want = if self.synced { PACKET } else { LOOKAHEAD };
            let take = want.saturating_sub(self.carry.len()).max(1).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            let carry = std::mem::take(&mut self.carry);
            let used = self.process(&carry, false);
            self.carry = carry;
            self.carry.drain(..used);
        }
        let used = self.process(data, false);
        self.carry.extend_from_slice(&data[used..]);
    }

    /// Ends the stream and reports. Whatever is left that does not form a whole packet is `trailing_bytes`.
    pub fn finish(mut self) -> TsReport {
        let carry = std::mem::take(&mut self.carry);
        let used = self.process(&carry, true);
        let trailing_bytes = (carry.len() - used) as u64;
        for slot in 0..self.pids.len() {
            self.close_pes(slot);
        }

        let pts_duration = self.pts_duration_ticks().map(|t| t as f64 / PTS_HZ);
        let pcr_duration = self
            .pcr
            .as_ref()
            .filter(|t| t.count >= 2)
            .map(|t| (t.closed_ticks + t.last - t.first) as f64 / PCR_HZ);
        let (duration_seconds, duration_source) = match (pts_duration, pcr_duration) {
            (Some(d), _) => (Some(d), Some(DurationSource::Pts)),
            (None, Some(d)) => (Some(d), Some(DurationSource::Pcr)),
            (None, None) => (None, None),
        };

        let streams = self
            .streams
            .iter()
            .map(|decl| {
                let state = self.pid(decl.pid);
                let timing = state.map(|s| &s.timing);
                let timed = timing.filter(|t| t.pes_with_pts > 0);
                TsStream {
                    pid: decl.pid,
                    program_number: decl.program_number,
                    stream_type: decl.stream_type,
                    codec: decl.codec,
                    kind: decl.kind,
                    packets: state.map_or(0, |s| s.packets),
                    pes_with_pts: timing.map_or(0, |t| t.pes_with_pts),
                    continuity_errors: state.map_or(0, |s| s.continuity_errors),
                    start_seconds: timed
                        .and_then(Timing::start)
                        .map(|pts| pts.rem_euclid(PTS_MODULUS) as f64 / PTS_HZ),
                    duration_seconds: timed.map(|t| t.total_ticks() as f64 / PTS_HZ),
                }
            })
            .collect();
        let mut undeclared_pids: Vec<u16> = self
            .pids
            .iter()
            .filter(|s| s.role == Role::Unknown && s.packets > 0 && !is_table_pid(s.pid))
            .map(|s| s.pid)
            .collect();
        undeclared_pids.sort_unstable();

        TsReport {
            bytes: self.bytes,
            packets: self.packets,
            trailing_bytes,
            sync_losses: self.sync_losses,
            skipped_bytes: self.skipped_bytes,
            transport_errors: self.transport_errors,
            null_packets: self.null_packets,
            malformed_packets: self.malformed_packets,
            psi_errors: self.psi_errors,
            continuity_errors: self.continuity_errors,
            timestamp_jumps: self.pts_jumps + self.pcr_jumps,
            programs: self.programs,
            streams,
            undeclared_pids,
            duration_seconds,
            duration_source,
            pts_duration_seconds: pts_duration,
            pcr_duration_seconds: pcr_duration,
        }
    }

    /// ffprobe's measure (max end − min start over PIDs), or with timestamp jumps the longest per-PID total.
    fn pts_duration_ticks(&self) -> Option<i64> {
        let timed = self
            .pids
            .iter()
            .map(|s| &s.timing)
            .filter(|t| t.pes_with_pts > 0);
        if self.pts_jumps == 0 {
            let mut span: Option<(i64, i64)> = None;
            for t in timed {
                let Some(seg) = t.segment else { continue };
                let end = t.segment_end(&seg);
                span = Some(span.map_or((seg.min_pts, end), |(s, e)| {
                    (s.min(seg.min_pts), e.max(end))
                }));
            }
            span.map(|(start, end)| end - start)
        } else {
            timed.map(Timing::total_ticks).max()
        }
    }

    fn pid(&self, pid: u16) -> Option<&PidState> {
        let slot = *self.slots.get(usize::from(pid))?;
        self.pids.get(usize::from(slot))
    }

    /// The index of `pid`'s state, created on first use.
    fn slot(&mut self, pid: u16) -> usize {
        let index = usize::from(pid) & (PID_COUNT - 1);
        match self.slots[index] {
            NO_SLOT => {
                self.slots[index] = self.pids.len() as u16;
                self.pids.push(PidState::new(pid));
                self.pids.len() - 1
            }
            slot => usize::from(slot),
        }
    }

    /// Inspects the whole packets of `buf` and returns how many bytes were used. Unless `at_end`, fewer than
    /// [`LOOKAHEAD`] bytes are left unused (to be completed by the next feed).
    fn process(&mut self, buf: &[u8], at_end: bool) -> usize {
        let mut i = 0;
        loop {
            if self.synced {
                let Some(packet) = buf.get(i..i + PACKET) else {
                    return i;
                };
                if packet[0] == SYNC {
                    self.packet(packet);
                    i += PACKET;
                    continue;
                }
                self.synced = false;
                self.sync_losses += 1;
            }
            // Lost: the next sync byte followed, one packet later, by another (or at the very end, a whole packet).
            let Some(found) = buf[i..].iter().position(|&b| b == SYNC) else {
                self.skipped_bytes += (buf.len() - i) as u64;
                return buf.len();
            };
            self.skipped_bytes += found as u64;
            i += found;
            match buf.get(i + PACKET) {
                Some(&SYNC) => self.synced = true,
                Some(_) => {
                    self.skipped_bytes += 1;
                    i += 1;
                }
                None if at_end && buf.len() - i == PACKET => self.synced = true,
                None => return i,
            }
        }
    }

    /// One packet of 188 bytes starting with the sync byte.
    fn packet(&mut self, p: &[u8]) {
        self.packets += 1;
        if p[1] & 0x80 != 0 {
            self.transport_errors += 1;
            return;
        }
        let pid = u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
        if pid == PID_NULL {
            self.null_packets += 1;
            return;
        }
        let pusi = p[1] & 0x40 != 0;
        let adaptation_field_control = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0F;
        if adaptation_field_control == 0 {
            self.malformed_packets += 1;
            return;
        }
        let mut payload_start = 4;
        let mut discontinuity = false;
        let mut pcr = None;
        if adaptation_field_control & 0x02 != 0 {
            let length = usize::from(p[4]);
            let max = if adaptation_field_control == 0x02 {
                183
            } else {
                182
            };
            if length > max {
                self.malformed_packets += 1;
                return;
            }
            if length > 0 {
                let flags = p[5];
                discontinuity = flags & 0x80 != 0;
                if flags & 0x10 != 0 && length >= 7 {
                    pcr = parse_pcr(&p[6..12]);
                }
            }
            payload_start = 5 + length;
        }
        let has_payload = adaptation_field_control & 0x01 != 0;

        let slot = self.slot(pid);
        let state = &mut self.pids[slot];
        state.packets += 1;
        match state.continuity(cc, has_payload, discontinuity) {
            Continuity::Ok => {}
            Continuity::Duplicate => return,
            Continuity::Error => {
                state.continuity_errors += 1;
                self.continuity_errors += 1;
                // Data was lost: a section being assembled is broken, and so is the ADTS frame walk.
                state.section.clear();
                if let Some(frames) = &mut state.frames {
                    frames.fail();
                }
            }
        }
        if let Some(pcr) = pcr {
            self.pcr(pid, pcr);
        }
        if !has_payload {
            return;
        }
        let payload = &p[payload_start..];
        match self.pids[slot].role {
            Role::Pat | Role::Pmt => self.psi(slot, pusi, payload),
            Role::Elementary | Role::Unknown => self.pes(slot, pusi, payload),
        }
    }

    fn pcr(&mut self, pid: u16, value: i64) {
        match &mut self.pcr {
            None => {
                self.pcr = Some(PcrTrack {
                    pid,
                    first: value,
                    last: value,
                    closed_ticks: 0,
                    count: 1,
                })
            }
            Some(track) if track.pid == pid => {
                let value = unwrap_near(value, track.last, PCR_MODULUS);
                let step = value - track.last;
                if !(0..=MAX_PCR_STEP).contains(&step) {
                    self.pcr_jumps += 1;
                    track.closed_ticks += track.last - track.first;
                    track.first = value;
                }
                track.last = value;
                track.count += 1;
            }
            Some(_) => {}
        }
    }

    /// PES payload of a PID that is not PSI: PTS from PES headers, AAC frames from ADTS headers.
    fn pes(&mut self, slot: usize, pusi: bool, payload: &[u8]) {
        if !pusi {
            let state = &mut self.pids[slot];
            if let (Some(frames), Some(_)) = (&mut state.frames, state.timing.open_pts) {
                frames.feed(payload);
            }
            return;
        }
        self.close_pes(slot);
        let Some(header) = payload.get(..9) else {
            return;
        };
        if header[..3] != [0, 0, 1]
            || !has_optional_pes_header(header[3])
            || header[6] & 0xC0 != 0x80
        {
            return;
        }
        let header_len = usize::from(header[8]);
        let pts = if header[7] & 0x80 != 0 && header_len >= 5 {
            payload.get(9..14).and_then(parse_timestamp)
        } else {
            None
        };
        let Some(raw) = pts else { return };

        let anchor = *self.pts_anchor.get_or_insert(raw);
        let timing = &mut self.pids[slot].timing;
        let pts = unwrap_near(raw, timing.prev_pts.unwrap_or(anchor), PTS_MODULUS);
        if let Some(prev) = timing.prev_pts {
            let step = pts - prev;
            if !(-MAX_PTS_BACKSTEP..=MAX_PTS_STEP).contains(&step) {
                self.pts_jumps += 1;
                timing.jump();
            } else if step != 0 {
                let step = step.abs();
                timing.min_step = Some(timing.min_step.map_or(step, |m| m.min(step)));
            }
        }
        timing.prev_pts = Some(pts);
        timing.open_pts = Some(pts);
        let state = &mut self.pids[slot];
        if let Some(frames) = &mut state.frames {
            frames.start_pes();
            if let Some(data) = payload.get(9 + header_len..) {
                frames.feed(data);
            } else {
                frames.fail();
            }
        }
    }

    /// Records the PES being received on `slot`, if it had a PTS.
    fn close_pes(&mut self, slot: usize) {
        let state = &mut self.pids[slot];
        if let Some(pts) = state.timing.open_pts.take() {
            let duration = state.frames.as_ref().and_then(Framing::pes_ticks);
            state.timing.close(pts, duration);
        }
    }

    /// Payload of a PSI PID (PAT, PMT): assembles sections across packets and handles each complete one.
    fn psi(&mut self, slot: usize, pusi: bool, payload: &[u8]) {
        let mut buf = std::mem::take(&mut self.pids[slot].section);
        if pusi {
            let Some((&pointer, rest)) = payload.split_first() else {
                self.psi_errors += 1;
                buf.clear();
                self.pids[slot].section = buf;
                return;
            };
            let pointer = usize::from(pointer);
            let Some(tail) = rest.get(..pointer) else {
                self.psi_errors += 1;
                buf.clear();
                self.pids[slot].section = buf;
                return;
            };
            if !buf.is_empty() {
                buf.extend_from_slice(tail);
                self.sections(slot, &mut buf);
                if !buf.is_empty() {
                    // A section that did not complete before the next one started.
                    self.psi_errors += 1;
                    buf.clear();
                }
            }
            buf.extend_from_slice(&rest[pointer..]);
        } else if buf.is_empty() {
            self.pids[slot].section = buf;
            return;
        } else {
            buf.extend_from_slice(payload);
        }
        self.sections(slot, &mut buf);
        if buf.len() > MAX_PSI_BUFFER {
            self.psi_errors += 1;
            buf.clear();
        }
        self.pids[slot].section = buf;
    }

    /// Handles the complete sections at the front of `buf` and removes them (and stuffing); leaves an incomplete one.
    fn sections(&mut self, slot: usize, buf: &mut Vec<u8>) {
        let mut start = 0;
        loop {
            let rest = &buf[start..];
            if rest.first().is_none_or(|&b| b == 0xFF) {
                // Stuffing (or nothing) after the last section.
                start = buf.len();
                break;
            }
            let [_, hi, lo, ..] = *rest else { break };
            let length = usize::from(hi & 0x0F) << 8 | usize::from(lo);
            if length > MAX_PSI_SECTION_LENGTH {
                self.psi_errors += 1;
                start = buf.len();
                break;
            }
            let Some(section) = rest.get(..3 + length) else {
                break;
            };
            self.section(slot, section);
            start += 3 + length;
        }
        buf.drain(..start);
    }

    /// One complete PSI section on `slot`'s PID.
    fn section(&mut self, slot: usize, s: &[u8]) {
        // table_id, flags+length (2), id (2), version/current_next, section_number, last_section_number, ..., CRC (4)
        if s.len() < 12 || s[1] & 0x80 == 0 {
            self.psi_errors += 1;
            return;
        }
        if crc32_mpeg2(s) != 0 {
            self.psi_errors += 1;
            return;
        }
        if s[5] & 0x01 == 0 {
            return; // current_next_indicator 0: not applicable yet.
        }
        let crc = u32::from_be_bytes([
            s[s.len() - 4],
            s[s.len() - 3],
            s[s.len() - 2],
            s[s.len() - 1],
        ]);
        if self.pids[slot].last_crc == Some(crc) {
            return; // The same table again.
        }
        let body = &s[8..s.len() - 4];
        let accepted = match (self.pids[slot].role, s[0]) {
            (Role::Pat, 0x00) => self.pat(body),
            (Role::Pmt, 0x02) => {
                self.pmt(self.pids[slot].pid, u16::from_be_bytes([s[3], s[4]]), body)
            }
            _ => false, // Other tables (or a table on the wrong PID): not ours.
        };
        if accepted {
            self.pids[slot].last_crc = Some(crc);
        }
    }

    fn pat(&mut self, body: &[u8]) -> bool {
        if body.len() % 4 != 0 {
            self.psi_errors += 1;
            return false;
        }
        for entry in body.chunks_exact(4) {
            let program_number = u16::from_be_bytes([entry[0], entry[1]]);
            let pmt_pid = u16::from_be_bytes([entry[2], entry[3]]) & 0x1FFF;
            if program_number == 0 || pmt_pid == PID_PAT || pmt_pid == PID_NULL {
                continue; // The network PID, or an impossible one.
            }
            let slot = self.slot(pmt_pid);
            match self.pids[slot].role {
                Role::Unknown => self.pids[slot].role = Role::Pmt,
                Role::Pmt => {}
                Role::Pat | Role::Elementary => continue,
            }
            match self
                .programs
                .iter_mut()
                .find(|p| p.program_number == program_number)
            {
                Some(program) => program.pmt_pid = pmt_pid,
                None => self.programs.push(TsProgram {
                    program_number,
                    pmt_pid,
                    pcr_pid: None,
                    stream_pids: Vec::new(),
                }),
            }
        }
        true
    }

    fn pmt(&mut self, pmt_pid: u16, program_number: u16, body: &[u8]) -> bool {
        let [pcr_hi, pcr_lo, info_hi, info_lo, rest @ ..] = body else {
            self.psi_errors += 1;
            return false;
        };
        let pcr_pid = u16::from_be_bytes([*pcr_hi, *pcr_lo]) & 0x1FFF;
        let info_len = usize::from(info_hi & 0x0F) << 8 | usize::from(*info_lo);
        let Some(mut entries) = rest.get(info_len..) else {
            self.psi_errors += 1;
            return false;
        };
        let mut declared = Vec::new();
        while !entries.is_empty() {
            let [stream_type, pid_hi, pid_lo, es_hi, es_lo, tail @ ..] = entries else {
                self.psi_errors += 1;
                return false;
            };
            let es_len = usize::from(es_hi & 0x0F) << 8 | usize::from(*es_lo);
            let Some(descriptors) = tail.get(..es_len) else {
                self.psi_errors += 1;
                return false;
            };
            declared.push((
                *stream_type,
                u16::from_be_bytes([*pid_hi, *pid_lo]) & 0x1FFF,
                descriptors,
            ));
            entries = &tail[es_len..];
        }

        let mut stream_pids = Vec::new();
        for (stream_type, pid, descriptors) in declared {
            if pid == PID_PAT || pid == PID_NULL {
                continue;
            }
            let slot = self.slot(pid);
            if matches!(self.pids[slot].role, Role::Pat | Role::Pmt) {
                continue;
            }
            self.pids[slot].role = Role::Elementary;
            let (codec, kind) = describe_stream(stream_type, descriptors);
            let frames = &mut self.pids[slot].frames;
            match (Framing::for_stream(stream_type, codec), &frames) {
                // A new version of the PMT with the same codec: keep counting where we are.
                (Some(Framing::Adts(_)), Some(Framing::Adts(_)))
                | (Some(Framing::Opus(_)), Some(Framing::Opus(_))) => {}
                (new, _) => *frames = new,
            }
            let decl = Declared {
                pid,
                program_number,
                stream_type,
                codec,
                kind,
            };
            match self.streams.iter_mut().find(|s| s.pid == pid) {
                Some(existing) => *existing = decl,
                None => self.streams.push(decl),
            }
            stream_pids.push(pid);
        }
        let pcr_pid = (pcr_pid != PID_NULL).then_some(pcr_pid);
        match self
            .programs
            .iter_mut()
            .find(|p| p.program_number == program_number)
        {
            Some(program) => {
                program.pcr_pid = pcr_pid;
                program.stream_pids = stream_pids;
            }
            None => self.programs.push(TsProgram {
                program_number,
                pmt_pid,
                pcr_pid,
                stream_pids,
            }),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/clip.ts");
    /// `ffprobe -v error -show_entries format=duration -of csv=p=0 tests/data/clip.ts` (ffmpeg 5.1.9).
    const CLIP_FFPROBE_DURATION: f64 = 4.021333;
    /// The end of the last frame minus the first PTS, from every packet ffprobe demuxes and parses:
    /// `ffprobe -show_entries packet=pts,duration tests/data/clip.ts`, max(pts + duration) - min(pts), in seconds.
    const CLIP_PACKETS_DURATION: f64 = 4.032;

    fn clip() -> Vec<u8> {
        std::fs::read(CLIP).expect("tests/data/clip.ts (see tests/data/README.md)")
    }

    fn inspect(data: &[u8]) -> TsReport {
        let mut inspector = TsInspector::new();
        inspector.feed(data);
        inspector.finish()
    }

    fn inspect_chunked(data: &[u8], rng: &mut Rng, max_chunk: usize) -> TsReport {
        let mut inspector = TsInspector::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = (rng.below(max_chunk) + 1).min(rest.len());
            inspector.feed(&rest[..n]);
            rest = &rest[n..];
            if rng.below(8) == 0 {
                inspector.feed(&[]);
            }
        }
        inspector.finish()
    }

    fn assert_bytes_add_up(r: &TsReport) {
        assert_eq!(
            r.bytes,
            r.packets * PACKET as u64 + r.skipped_bytes + r.trailing_bytes,
            "{r:?}"
        );
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    // ---- A small muxer for synthetic streams ----

    #[derive(Default)]
    struct Mux {
        out: Vec<u8>,
        cc: std::collections::HashMap<u16, u8>,
    }

    fn with_crc(mut section: Vec<u8>) -> Vec<u8> {
        let crc = crc32_mpeg2(&section);
        section.extend_from_slice(&crc.to_be_bytes());
        section
    }

    /// A long-form section: table_id, id, version 0, current, section 0 of 0, body, CRC.
    fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let length = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xB0 | (length >> 8) as u8, length as u8];
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&[0xC1, 0x00, 0x00]);
        s.extend_from_slice(body);
        with_crc(s)
    }

    fn pat(programs: &[(u16, u16)]) -> Vec<u8> {
        let body: Vec<u8> = programs
            .iter()
            .flat_map(|&(n, pid)| [n.to_be_bytes(), (0xE000 | pid).to_be_bytes()].concat())
            .collect();
        section(0x00, 1, &body)
    }

    fn pmt(program: u16, pcr_pid: u16, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
        let mut body = (0xE000 | pcr_pid).to_be_bytes().to_vec();
        body.extend_from_slice(&[0xF0, 0x00]);
        for &(stream_type, pid, descriptors) in streams {
            body.push(stream_type);
            body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
            body.extend_from_slice(&(0xF000 | descriptors.len() as u16).to_be_bytes());
            body.extend_from_slice(descriptors);
        }
        section(0x02, program, &body)
    }

    fn pes(stream_id: u8, pts: Option<u64>, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0, 0, 1, stream_id, 0, 0, 0x80];
        match pts {
            Some(pts) => {
                h.extend_from_slice(&[0x80, 5]);
                h.extend_from_slice(&encode_pts(0x20, pts));
            }
            None => h.extend_from_slice(&[0x00, 0]),
        }
        h.extend_from_slice(data);
        h
    }

    fn encode_pts(prefix: u8, pts: u64) -> [u8; 5] {
        [
            prefix | ((pts >> 29) & 0x0E) as u8 | 1,
            (pts >> 22) as u8,
            ((pts >> 14) & 0xFE) as u8 | 1,
            (pts >> 7) as u8,
            ((pts << 1) & 0xFE) as u8 | 1,
        ]
    }

    fn encode_pcr(pcr: u64) -> [u8; 6] {
        let (base, ext) = (pcr / 300, pcr % 300);
        [
            (base >> 25) as u8,
            (base >> 17) as u8,
            (base >> 9) as u8,
            (base >> 1) as u8,
            ((base & 1) << 7) as u8 | 0x7E | (ext >> 8) as u8,
            ext as u8,
        ]
    }

    /// An ADTS frame (48 kHz, one raw data block) with `payload` bytes of audio.
    fn adts_frame(payload: usize) -> Vec<u8> {
        let len = 7 + payload;
        let mut f = vec![
            0xFF,
            0xF1,
            0x4C,
            0x80 | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 7) << 5) as u8 | 0x1F,
            0xFC,
        ];
        f.resize(len, 0xAA);
        f
    }

    impl Mux {
        fn next_cc(&mut self, pid: u16) -> u8 {
            let cc = self.cc.entry(pid).or_insert(15);
            *cc = (*cc + 1) & 0x0F;
            *cc
        }

        /// Writes `data` as packets on `pid`, the first with PUSI (and a PCR if given), stuffing the last through
        /// its adaptation field. Empty `data` makes one adaptation-field-only packet (counter unchanged).
        fn write(&mut self, pid: u16, pusi: bool, pcr: Option<u64>, data: &[u8]) {
            let mut rest = data;
            let mut first = true;
            loop {
                // Adaptation field contents (after its length byte); `None` when there is none.
                let mut af: Option<Vec<u8>> = match pcr {
                    Some(pcr) if first => Some([&[0x10][..], &encode_pcr(pcr)].concat()),
                    _ => None,
                };
                let room = 184 - af.as_ref().map_or(0, |af| 1 + af.len());
                let (chunk, more) = rest.split_at(rest.len().min(room));
                if chunk.len() < room || af.is_some() && chunk.is_empty() {
                    let total = 184 - chunk.len(); // length byte + contents
                    let field = af.get_or_insert_with(Vec::new);
                    if field.is_empty() && total >= 2 {
                        field.push(0x00); // flags
                    }
                    field.resize(total - 1, 0xFF);
                }
                let afc = match (&af, chunk.is_empty()) {
                    (_, true) => 0x20,
                    (None, false) => 0x10,
                    (Some(_), false) => 0x30,
                };
                let cc = if chunk.is_empty() {
                    *self.cc.get(&pid).unwrap_or(&0)
                } else {
                    self.next_cc(pid)
                };
                let mut p = vec![
                    SYNC,
                    (if first && pusi { 0x40 } else { 0 }) | (pid >> 8) as u8,
                    pid as u8,
                    afc | cc,
                ];
                if let Some(af) = af {
                    p.push(af.len() as u8);
                    p.extend_from_slice(&af);
                }
                p.extend_from_slice(chunk);
                assert_eq!(p.len(), PACKET);
                self.out.extend_from_slice(&p);
                first = false;
                rest = more;
                if rest.is_empty() {
                    break;
                }
            }
        }

        fn psi(&mut self, pid: u16, section: &[u8]) {
            let mut data = vec![0u8];
            data.extend_from_slice(section);
            self.write(pid, true, None, &data);
        }

        /// PAT (program 1 on PMT PID 0x1000) and a PMT with H.264 on 0x100 and AAC on 0x101, PCR on 0x100.
        fn tables(&mut self) {
            self.psi(0, &pat(&[(1, 0x1000)]));
            self.psi(
                0x1000,
                &pmt(1, 0x100, &[(0x1B, 0x100, &[]), (0x0F, 0x101, &[])]),
            );
        }
    }

    /// `seconds` of 25 fps "video" (one PES per frame, PCR on each) and 48 kHz AAC (several ADTS frames per PES).
    fn synthetic(start_pts: u64, seconds: u64) -> Vec<u8> {
        let mut mux = Mux::default();
        mux.tables();
        let frames = seconds * 25;
        for f in 0..frames {
            let pts = (start_pts + f * 3600) % (1 << 33);
            mux.write(
                0x100,
                true,
                Some(((pts + (1 << 33) - 9000) % (1 << 33)) * 300),
                &pes(0xE0, Some(pts), &[0x11; 300]),
            );
            if f % 5 == 0 {
                // 5 video frames = 200 ms = 9.375 AAC frames of 21.33 ms: alternate 9 and 10 to stay in step.
                let audio_frames = (f / 5 + 1) * 75 / 8 - (f / 5) * 75 / 8;
                let audio_pts = (start_pts + (f / 5) * 75 / 8 * 1920) % (1 << 33);
                let data: Vec<u8> = (0..audio_frames).flat_map(|_| adts_frame(50)).collect();
                mux.write(0x101, true, None, &pes(0xC0, Some(audio_pts), &data));
            }
        }
        mux.out
    }

    // ---- looks_like_ts ----

    #[test]
    fn looks_like_ts_accepts_the_clip_and_short_prefixes_of_whole_packets() {
        let clip = clip();
        looks_like_ts(&clip).unwrap();
        looks_like_ts(&clip[..PACKET]).unwrap();
        looks_like_ts(&clip[..PACKET * 3 + 50]).unwrap();
        // The padding after the last whole packet is not checked.
        let mut padded = clip[..PACKET * 2].to_vec();
        padded.extend_from_slice(&[8; 8]);
        looks_like_ts(&padded).unwrap();
    }

    #[test]
    fn looks_like_ts_names_the_offset_and_the_likely_cause() {
        let clip = clip();
        let mut bad = clip[..PACKET * 10].to_vec();
        bad[PACKET * 7] = 0x46;
        let err = looks_like_ts(&bad).unwrap_err();
        assert_eq!(
            err,
            TsError::NoSync {
                offset: 1316,
                packet: 7,
                found: 0x46
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("byte 1316") && msg.contains("0x46") && msg.contains("key or password"),
            "{msg}"
        );
        // Only the first CHECK_PACKETS packets are checked.
        bad[PACKET * 7] = SYNC;
        bad[PACKET * CHECK_PACKETS] = 0;
        looks_like_ts(&bad).unwrap();

        assert_eq!(looks_like_ts(&[]), Err(TsError::TooShort { len: 0 }));
        assert_eq!(
            looks_like_ts(&clip[..187]),
            Err(TsError::TooShort { len: 187 })
        );
        assert!(looks_like_ts(&clip[1..]).is_err());
    }

    #[test]
    fn random_data_does_not_look_like_ts() {
        // A wrong key gives uniformly random bytes: with 8 packets checked, a pass has probability 2^-64.
        let mut rng = Rng(0x5EED);
        for _ in 0..2000 {
            let mut noise = rng.bytes(PACKET * CHECK_PACKETS);
            noise[0] = SYNC; // even with a lucky first byte
            assert!(looks_like_ts(&noise).is_err());
        }
    }

    // ---- The committed fixture ----

    #[test]
    fn clip_report_matches_ffprobe() {
        let clip = clip();
        let r = inspect(&clip);
        assert_eq!(r.bytes, clip.len() as u64);
        assert_eq!(r.packets, 665);
        assert_eq!(
            (r.trailing_bytes, r.sync_losses, r.skipped_bytes),
            (0, 0, 0)
        );
        assert_eq!(
            (
                r.continuity_errors,
                r.psi_errors,
                r.malformed_packets,
                r.transport_errors
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(r.timestamp_jumps, 0);
        assert_eq!(
            r.programs,
            vec![TsProgram {
                program_number: 1,
                pmt_pid: 0x1000,
                pcr_pid: Some(0x100),
                stream_pids: vec![0x100, 0x101]
            }]
        );
        assert_eq!(r.streams.len(), 2);
        let (video, audio) = (&r.streams[0], &r.streams[1]);
        assert_eq!(
            (video.pid, video.stream_type, video.codec, video.kind),
            (0x100, 0x1B, "H.264", StreamKind::Video)
        );
        assert_eq!(
            (audio.pid, audio.stream_type, audio.codec, audio.kind),
            (0x101, 0x0F, "AAC (ADTS)", StreamKind::Audio)
        );
        assert_eq!(video.to_string(), "H.264 video (PID 0x0100)");
        assert_eq!(video.pes_with_pts, 60); // 4 s at 15 fps
        // ffprobe: video start_time 1.421333 duration 4.000000; audio start_time 1.400000 duration 4.010667.
        assert!(
            (video.start_seconds.unwrap() - 1.421333).abs() < 1e-5,
            "{video:?}"
        );
        assert!(
            (video.duration_seconds.unwrap() - 4.0).abs() < 1e-5,
            "{video:?}"
        );
        assert!(
            (audio.start_seconds.unwrap() - 1.4).abs() < 1e-5,
            "{audio:?}"
        );
        // ffprobe's stream duration counts one AAC frame for the last PES, which holds several; its packets go on
        // to 4.032 s (see CLIP_PACKETS_DURATION), and so does our count of the ADTS frames.
        assert!(
            (audio.duration_seconds.unwrap() - 4.032).abs() < 1e-5,
            "{audio:?}"
        );
        let d = r.duration_seconds.unwrap();
        assert!(
            (d - CLIP_PACKETS_DURATION).abs() < 1e-5,
            "measured {d}, ffprobe's packets say {CLIP_PACKETS_DURATION}"
        );
        assert!(
            (d - CLIP_FFPROBE_DURATION).abs() < 0.1,
            "measured {d}, ffprobe says {CLIP_FFPROBE_DURATION}"
        );
        assert_eq!(r.duration_source, Some(DurationSource::Pts));
        let pcr = r.pcr_duration_seconds.unwrap();
        assert!(pcr > 3.5 && pcr <= d, "pcr {pcr}");
        assert!(r.undeclared_pids.is_empty(), "{:?}", r.undeclared_pids);
        assert_bytes_add_up(&r);
    }

    #[test]
    fn chunking_does_not_change_the_report() {
        let clip = clip();
        let whole = inspect(&clip);
        let mut rng = Rng(42);
        for max_chunk in [1, 7, 188, 189, 300, 4096, 100_000] {
            assert_eq!(
                inspect_chunked(&clip, &mut rng, max_chunk),
                whole,
                "chunks up to {max_chunk}"
            );
        }
    }

    #[test]
    fn padding_after_the_last_packet_is_trailing_bytes() {
        let mut padded = clip();
        padded.extend_from_slice(&[4, 4, 4, 4]);
        let r = inspect(&padded);
        assert_eq!((r.packets, r.trailing_bytes, r.sync_losses), (665, 4, 0));
        // A truncated last packet is trailing too.
        let clip = clip();
        let r = inspect(&clip[..clip.len() - 100]);
        assert_eq!((r.packets, r.trailing_bytes, r.sync_losses), (664, 88, 0));
        assert_bytes_add_up(&r);
    }

    #[test]
    fn report_serializes_with_snake_case_fields() {
        let r = inspect(&clip());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["packets"], 665);
        assert_eq!(json["trailing_bytes"], 0);
        assert_eq!(json["continuity_errors"], 0);
        assert_eq!(json["duration_source"], "pts");
        assert_eq!(json["streams"][0]["codec"], "H.264");
        assert_eq!(json["streams"][1]["kind"], "audio");
        assert_eq!(json["streams"][1]["stream_type"], 15);
        assert_eq!(json["programs"][0]["pcr_pid"], 256);
        assert!(json["duration_seconds"].as_f64().unwrap() > 4.0);
    }

    // ---- Synthetic streams ----

    #[test]
    fn synthetic_stream_duration_counts_adts_frames() {
        let r = inspect(&synthetic(900_000, 6));
        assert_eq!(r.continuity_errors, 0);
        assert_eq!(r.streams.len(), 2);
        // Video: 150 frames of 40 ms. Audio: 30 PES of 9 or 10 frames, 281 frames of 21.33 ms in all.
        assert!(
            (r.streams[0].duration_seconds.unwrap() - 6.0).abs() < 1e-9,
            "{:?}",
            r.streams[0]
        );
        let audio_frames = 30 * 75 / 8;
        assert!(
            (r.streams[1].duration_seconds.unwrap() - f64::from(audio_frames) * 1024.0 / 48000.0)
                .abs()
                < 1e-4
        );
        let expected =
            (r.streams[0].duration_seconds.unwrap()).max(r.streams[1].duration_seconds.unwrap());
        assert!(
            (r.duration_seconds.unwrap() - expected).abs() < 1e-4,
            "{r:?}"
        );
        assert!((r.streams[0].start_seconds.unwrap() - 10.0).abs() < 1e-9);
        // PCR: 149 steps of 40 ms.
        assert!((r.pcr_duration_seconds.unwrap() - 5.96).abs() < 1e-6);
    }

    /// An Opus packet of `size` bytes (TOC, `extra`, filler) behind its MPEG-TS control header.
    fn opus_packet(toc: u8, extra: &[u8], size: usize, trims: bool) -> Vec<u8> {
        let mut v = vec![0x7F, if trims { 0xF8 } else { 0xE0 }];
        v.extend(std::iter::repeat_n(0xFF, size / 255));
        v.push((size % 255) as u8);
        if trims {
            v.extend_from_slice(&[0, 0, 0, 0]);
        }
        v.push(toc);
        v.extend_from_slice(extra);
        v.resize(v.len() + size - 1 - extra.len(), 0x55);
        v
    }

    #[test]
    fn opus_frames_are_counted() {
        // 20 ms CELT (1 frame), three 20 ms frames (code 3, with trims, a size over 255), two 20 ms SILK frames.
        let data = [
            opus_packet(0xF8, &[], 100, false),
            opus_packet(0xF8 | 3, &[3], 600, true),
            opus_packet(0x08 | 1, &[], 30, false),
        ]
        .concat();
        let mut whole = Opus::default();
        whole.start_pes();
        whole.feed(&data);
        assert_eq!((whole.samples, whole.pes_ticks()), (6 * 960, Some(10_800)));
        let mut bytewise = Opus::default();
        bytewise.start_pes();
        data.chunks(1).for_each(|b| bytewise.feed(b));
        assert_eq!(bytewise.samples, 6 * 960);
        let mut bad = Opus::default();
        bad.start_pes();
        bad.feed(&[0x7F, 0x00, 1, 2, 3]);
        assert_eq!(bad.pes_ticks(), None);

        // In a stream: ten such PES, 120 ms apart, last one included.
        let mut mux = Mux::default();
        mux.psi(0, &pat(&[(1, 0x1000)]));
        mux.psi(
            0x1000,
            &pmt(
                1,
                0x101,
                &[(0x06, 0x101, &[0x05, 4, b'O', b'p', b'u', b's'])],
            ),
        );
        for i in 0..10 {
            mux.write(
                0x101,
                true,
                None,
                &pes(0xBD, Some(90_000 + i * 10_800), &data),
            );
        }
        let r = inspect(&mux.out);
        assert_eq!(r.streams[0].codec, "Opus");
        assert!((r.duration_seconds.unwrap() - 1.2).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn pts_and_pcr_wraparound_is_measured_across() {
        // Starts 2 s before the 33-bit PTS clock wraps, lasts 6 s.
        let start = (1u64 << 33) - 180_000;
        let r = inspect(&synthetic(start, 6));
        assert_eq!(r.timestamp_jumps, 0);
        assert!(
            (r.streams[0].duration_seconds.unwrap() - 6.0).abs() < 1e-9,
            "{r:?}"
        );
        assert!(
            (r.pcr_duration_seconds.unwrap() - 5.96).abs() < 1e-6,
            "{r:?}"
        );
        let plain = inspect(&synthetic(900_000, 6));
        assert!((r.duration_seconds.unwrap() - plain.duration_seconds.unwrap()).abs() < 1e-9);
        assert!((r.streams[0].start_seconds.unwrap() - start as f64 / 90_000.0).abs() < 1e-9);
    }

    #[test]
    fn a_timestamp_jump_does_not_count_as_elapsed_time() {
        let mut data = synthetic(900_000, 3);
        // The same again with the clock 1 hour later, restarted counters, and the discontinuity indicator
        // on the first packet of each PID that has an adaptation field.
        let mut later = synthetic(900_000 + 3600 * 90_000, 3);
        let mut seen = std::collections::HashSet::new();
        for p in later.chunks_mut(PACKET) {
            let pid = u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
            if seen.insert(pid) && p[3] & 0x20 != 0 && p[4] > 0 {
                p[5] |= 0x80;
            }
        }
        data.append(&mut later);
        let r = inspect(&data);
        assert!(r.timestamp_jumps >= 2, "{r:?}");
        let d = r.duration_seconds.unwrap();
        assert!((d - 6.0).abs() < 0.05, "{d}");
        let pcr = r.pcr_duration_seconds.unwrap();
        assert!((pcr - 5.92).abs() < 1e-6, "{pcr}");
    }

    #[test]
    fn a_clip_repeated_lasts_as_long_as_its_repeats() {
        let clip = clip();
        let mut three = [&clip[..], &clip[..], &clip[..]].concat();
        // Continuity counters carry on across the seams, as a muxer that looped its input would write them.
        let mut last = std::collections::HashMap::new();
        for p in three.chunks_mut(PACKET) {
            let pid = u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
            let cc = match last.get(&pid) {
                Some(&cc) if p[3] & 0x10 != 0 => (cc + 1) & 0x0F,
                Some(&cc) => cc,
                None => p[3] & 0x0F,
            };
            p[3] = (p[3] & 0xF0) | cc;
            last.insert(pid, cc);
        }
        let r = inspect(&three);
        assert_eq!(r.continuity_errors, 0);
        assert!(r.timestamp_jumps >= 3, "{r:?}");
        assert!(
            (r.duration_seconds.unwrap() - 3.0 * CLIP_PACKETS_DURATION).abs() < 1e-4,
            "{r:?}"
        );
        assert!(
            (r.streams[0].duration_seconds.unwrap() - 12.0).abs() < 1e-4,
            "{r:?}"
        );
        assert!(
            (r.pcr_duration_seconds.unwrap() - 3.0 * inspect(&clip).pcr_duration_seconds.unwrap())
                .abs()
                < 1e-4
        );
        assert_eq!(r.packets, 3 * 665);
    }

    #[test]
    fn continuity_counters() {
        let mut mux = Mux::default();
        mux.tables();
        for f in 0..8u64 {
            mux.write(0x100, true, None, &pes(0xE0, Some(f * 3600), &[0; 10]));
        }
        let base = mux.out.clone();
        assert_eq!(inspect(&base).continuity_errors, 0);
        let packet = |i: usize| PACKET * (2 + i); // after PAT and PMT

        // A lost packet: one error.
        let mut lost = base.clone();
        lost.drain(packet(3)..packet(4));
        let r = inspect(&lost);
        assert_eq!(r.continuity_errors, 1);
        assert_eq!(r.streams[0].continuity_errors, 1);

        // One duplicate is allowed (and not parsed twice); two are an error.
        let mut dup = base.clone();
        let copy = dup[packet(3)..packet(4)].to_vec();
        dup.splice(packet(4)..packet(4), copy.iter().copied());
        let r = inspect(&dup);
        assert_eq!(r.continuity_errors, 0);
        assert_eq!(r.streams[0].pes_with_pts, 8);
        dup.splice(packet(4)..packet(4), copy.iter().copied());
        assert_eq!(inspect(&dup).continuity_errors, 1);

        // An adaptation-field-only packet keeps the counter; incrementing it is an error.
        let mut af_only = base.clone();
        let last_cc = af_only[packet(3) + 3] & 0x0F;
        let mut p = vec![SYNC, 0x01, 0x00, 0x20 | last_cc, 183, 0x00];
        p.resize(PACKET, 0xFF);
        af_only.splice(packet(4)..packet(4), p.iter().copied());
        assert_eq!(inspect(&af_only).continuity_errors, 0);
        let mut af_bad = base.clone();
        p[3] = 0x20 | ((last_cc + 1) & 0x0F);
        af_bad.splice(packet(4)..packet(4), p.iter().copied());
        assert_eq!(inspect(&af_bad).continuity_errors, 2); // the packet and the next one

        // The discontinuity indicator allows any counter.
        let mut jump = base.clone();
        jump[packet(5) + 3] = (jump[packet(5) + 3] & 0xF0) | ((jump[packet(5) + 3] + 7) & 0x0F);
        let r = inspect(&jump);
        assert_eq!(r.continuity_errors, 2); // at the jump, and back
        let mut announced = base.clone();
        for i in 5..8 {
            let at = packet(i);
            announced[at + 3] = (announced[at + 3] & 0xF0) | ((announced[at + 3] + 7) & 0x0F);
        }
        // Mark packet 5 as a discontinuity: its adaptation field is a stuffing field (length > 0).
        assert_eq!(announced[packet(5) + 3] & 0x20, 0x20);
        announced[packet(5) + 5] |= 0x80;
        assert_eq!(inspect(&announced).continuity_errors, 0);
    }

    #[test]
    fn lost_sync_is_counted_and_recovered() {
        let clip = clip();
        let mut data = clip[..PACKET * 100 + 50].to_vec(); // a packet cut short ...
        data.extend_from_slice(&[0x47, 0, 0, 0x47, 0x12]); // ... some junk with fake sync bytes ...
        data.extend_from_slice(&clip[PACKET * 101..]); // ... then whole packets again
        let r = inspect(&data);
        assert_eq!(r.sync_losses, 1);
        assert_eq!(r.skipped_bytes, 55);
        assert_eq!(r.packets, 664);
        assert!(r.continuity_errors >= 1);
        assert_bytes_add_up(&r);
        let mut rng = Rng(7);
        assert_eq!(inspect_chunked(&data, &mut rng, 200), r);

        // Starting mid-packet.
        let r = inspect(&clip[100..]);
        assert_eq!((r.sync_losses, r.packets), (1, 664));
        assert_eq!(r.skipped_bytes, 88);
    }

    #[test]
    fn streams_are_named_from_stream_type_and_descriptors() {
        let mut mux = Mux::default();
        mux.psi(0, &pat(&[(1, 0x20), (2, 0x30), (0, 0x10)]));
        let opus = [0x05, 4, b'O', b'p', b'u', b's'];
        let ac3 = [0x0A, 4, b'e', b'n', b'g', 0, 0x6A, 1, 0];
        mux.psi(
            0x20,
            &pmt(
                1,
                0x21,
                &[(0x24, 0x21, &[]), (0x06, 0x22, &opus), (0x03, 0x23, &[])],
            ),
        );
        mux.psi(
            0x30,
            &pmt(
                2,
                0x1FFF,
                &[(0x06, 0x31, &ac3), (0x06, 0x32, &[]), (0x99, 0x33, &[])],
            ),
        );
        let r = inspect(&mux.out);
        assert_eq!(r.psi_errors, 0);
        let names: Vec<_> = r.streams.iter().map(|s| (s.pid, s.codec, s.kind)).collect();
        assert_eq!(
            names,
            vec![
                (0x21, "HEVC", StreamKind::Video),
                (0x22, "Opus", StreamKind::Audio),
                (0x23, "MPEG audio", StreamKind::Audio),
                (0x31, "AC-3", StreamKind::Audio),
                (0x32, "private data", StreamKind::Data),
                (0x33, "unknown", StreamKind::Unknown),
            ]
        );
        assert_eq!(r.programs.len(), 2);
        assert_eq!(r.programs[1].pcr_pid, None);
        assert_eq!(r.duration_seconds, None);
        assert_eq!(describe_stream(0x82, &[]).0, "DTS");
        assert_eq!(describe_stream(0x86, &[]).0, "SCTE-35");
    }

    #[test]
    fn sections_spanning_packets_and_several_per_packet() {
        // A PMT with many streams spans several packets.
        let streams: Vec<(u8, u16, &[u8])> =
            (0..60).map(|i| (0x1B, 0x100 + i, &[0u8; 0][..])).collect();
        let big = pmt(1, 0x100, &streams);
        assert!(big.len() > 184);
        let mut mux = Mux::default();
        // Two PAT sections in one payload (the second adds a program).
        let mut two = vec![0u8];
        two.extend_from_slice(&pat(&[(1, 0x1000)]));
        two.extend_from_slice(&pat(&[(1, 0x1000), (2, 0x1001)]));
        mux.write(0, true, None, &two);
        mux.psi(0x1000, &big);
        let r = inspect(&mux.out);
        assert_eq!(r.psi_errors, 0, "{r:?}");
        assert_eq!(r.programs.len(), 2, "{r:?}");
        assert_eq!(r.streams.len(), 60);
    }

    #[test]
    fn bad_psi_is_counted_not_trusted() {
        let good_pmt = pmt(1, 0x100, &[(0x1B, 0x100, &[])]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("crc", {
                let mut s = good_pmt.clone();
                s[13] ^= 1;
                s
            }),
            ("section_length over 1021", {
                let mut s = good_pmt.clone();
                s[1] = 0xBF;
                s[2] = 0xFF;
                s
            }),
            ("ES info length past the end", {
                let mut body = vec![0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x40];
                body.extend_from_slice(&[0; 4]);
                section(0x02, 1, &body)
            }),
            (
                "program info length past the end",
                section(0x02, 1, &[0xE1, 0x00, 0xFF, 0xFF]),
            ),
            (
                "truncated ES entry",
                section(0x02, 1, &[0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1]),
            ),
            ("too short", with_crc(vec![0x02, 0xB0, 0x05, 0, 1, 0xC1, 0])),
        ];
        for (what, bad) in cases {
            let mut mux = Mux::default();
            mux.psi(0, &pat(&[(1, 0x1000)]));
            mux.psi(0x1000, &bad);
            let r = inspect(&mux.out);
            assert!(r.psi_errors >= 1, "{what}: {r:?}");
            assert!(r.streams.is_empty(), "{what}: {r:?}");
        }

        // A pointer field past the payload, and a section that never completes.
        let mut mux = Mux::default();
        mux.write(0, true, None, &[200, 0, 0xB0, 0x0D]);
        mux.write(0, true, None, &[0, 0x00, 0xB0, 0x40, 0, 1]);
        mux.write(0, true, None, &[0]);
        let r = inspect(&mux.out);
        assert_eq!(r.psi_errors, 2, "{r:?}");
        assert!(r.programs.is_empty());
    }

    #[test]
    fn malformed_packets_are_counted() {
        let mut p = vec![SYNC, 0x01, 0x00, 0x30, 184];
        p.resize(PACKET, 0);
        let mut reserved = vec![SYNC, 0x01, 0x00, 0x00];
        reserved.resize(PACKET, 0);
        let mut tei = vec![SYNC, 0x81, 0x00, 0x10];
        tei.resize(PACKET, 0);
        let r = inspect(&[p, reserved, tei].concat());
        assert_eq!(
            (r.packets, r.malformed_packets, r.transport_errors),
            (3, 2, 1)
        );
    }

    #[test]
    fn pcr_only_gives_the_duration_when_there_is_no_pts() {
        let mut mux = Mux::default();
        for i in 0..11u64 {
            mux.write(0x200, false, Some(i * 2_700_000), &[]);
        }
        let r = inspect(&mux.out);
        assert_eq!(r.duration_source, Some(DurationSource::Pcr));
        assert!((r.duration_seconds.unwrap() - 1.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.undeclared_pids, vec![0x200]);
        assert_eq!(r.pts_duration_seconds, None);
    }

    #[test]
    fn timestamps_parse() {
        for pts in [0u64, 1, 90_000, (1 << 32) + 12345, (1 << 33) - 1] {
            assert_eq!(parse_timestamp(&encode_pts(0x20, pts)), Some(pts as i64));
        }
        assert_eq!(parse_timestamp(&[0x20, 0, 0, 0, 0]), None, "marker bits");
        assert_eq!(parse_timestamp(&[0x21, 0]), None);
        for pcr in [
            0u64,
            299,
            300,
            27_000_000 * 3600 + 17,
            PCR_MODULUS as u64 - 1,
        ] {
            assert_eq!(parse_pcr(&encode_pcr(pcr)), Some(pcr as i64));
        }
        assert_eq!(
            unwrap_near(10, PTS_MODULUS - 10, PTS_MODULUS),
            PTS_MODULUS + 10
        );
        assert_eq!(unwrap_near(PTS_MODULUS - 10, 10, PTS_MODULUS), -10);
        assert_eq!(unwrap_near(500, 400, PTS_MODULUS), 500);
        // CRC-32/MPEG-2 check value.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    // ---- Never panic ----

    #[test]
    fn fuzz_random_and_mutated_input_never_panics() {
        let clip = clip();
        let synthetic = synthetic((1 << 33) - 45_000, 2);
        let mut rng = Rng(0xA5A5_5A5A_1234_5678);
        for round in 0..300 {
            let data = match round % 6 {
                0 => {
                    let n = rng.below(5000);
                    rng.bytes(n)
                }
                // Random packets with valid sync bytes: exercises every header path.
                1 => {
                    let n = PACKET * (1 + rng.below(40));
                    let mut d = rng.bytes(n);
                    for p in d.chunks_mut(PACKET) {
                        p[0] = SYNC;
                        if rng.below(2) == 0 {
                            p[1] &= 0xE0; // low PIDs: PAT and friends
                        }
                    }
                    d
                }
                2 | 3 => {
                    let mut d = if round % 6 == 2 {
                        clip.clone()
                    } else {
                        synthetic.clone()
                    };
                    for _ in 0..1 + rng.below(200) {
                        let at = rng.below(d.len());
                        d[at] = match rng.below(4) {
                            0 => 0,
                            1 => 0xFF,
                            2 => SYNC,
                            _ => rng.next() as u8,
                        };
                    }
                    d
                }
                4 => {
                    // Cut and splice.
                    let src = if rng.below(2) == 0 { &clip } else { &synthetic };
                    let mut d = Vec::new();
                    for _ in 0..1 + rng.below(10) {
                        let a = rng.below(src.len());
                        let b = (a + rng.below(3000)).min(src.len());
                        d.extend_from_slice(&src[a..b]);
                    }
                    d
                }
                _ => {
                    // PSI packets with random section bytes.
                    let mut mux = Mux::default();
                    mux.psi(0, &pat(&[(1, 0x1000)]));
                    for _ in 0..1 + rng.below(6) {
                        let n = rng.below(400);
                        let mut s = rng.bytes(n);
                        if let Some(b) = s.first_mut() {
                            *b = 0x02;
                        }
                        if rng.below(2) == 0 && s.len() > 8 {
                            s = with_crc(s);
                        }
                        let pusi = rng.below(3) != 0;
                        mux.write(
                            0x1000,
                            pusi,
                            None,
                            &[&[rng.below(20) as u8][..], &s].concat(),
                        );
                    }
                    mux.out
                }
            };
            let whole = inspect(&data);
            assert_bytes_add_up(&whole);
            let max_chunk = 1 + rng.below(600);
            let chunked = inspect_chunked(&data, &mut rng, max_chunk);
            assert_eq!(
                format!("{chunked:?}"),
                format!("{whole:?}"),
                "round {round}"
            );
            let _ = looks_like_ts(&data);
            if let Some(d) = whole.duration_seconds {
                assert!(d.is_finite() && d >= 0.0, "round {round}: {d}");
            }
        }
    }
}
