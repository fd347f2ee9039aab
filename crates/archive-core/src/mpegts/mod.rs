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

mod audio;
mod inspector;
mod psi;
mod report;
#[cfg(test)]
mod tests;
mod timing;

pub use self::inspector::TsInspector;
pub use self::report::{DurationSource, StreamKind, TsProgram, TsReport, TsStream};

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
