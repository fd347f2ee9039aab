//! The recording: an MPEG-TS clip, repeated to the recorded time.
//!
//! The emulator has no camera: every archive is made of one clip (the bundled 4-second H.264/AAC clip,
//! `tests/data/clip.ts`, or the `--media` file). An archive recorded for longer than the clip holds as many
//! copies as it takes, each with its timestamps (PTS, DTS, PCR) moved on by the clip's length and the
//! continuity counters carried on, so the result is one continuous stream that ffprobe (and
//! `archive_core::mpegts`) measure as about the recorded time. A clip without timestamps is used once.
//!
//! ```
//! use std::time::Duration;
//! use opentok_emulator::media::Media;
//!
//! let media = Media::bundled();
//! assert_eq!(media.build(Duration::from_secs(1)), opentok_emulator::media::BUNDLED_CLIP);
//! let twelve = media.build(Duration::from_secs(12));
//! assert_eq!(twelve.len(), 3 * media.clip_len());
//! ```

use std::time::Duration;

use archive_core::mpegts::{TsInspector, looks_like_ts};

/// The bundled clip: 4 s of 320x240 H.264 and mono AAC in MPEG-TS, 125,020 bytes.
pub const BUNDLED_CLIP: &[u8] = include_bytes!("../../../tests/data/clip.ts");

const PACKET: usize = 188;
const PTS_HZ: f64 = 90_000.0;
const PTS_WRAP: u64 = 1 << 33;

/// Why a file cannot be the emulator's media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Not MPEG-TS.
    #[error("the media is not MPEG-TS: {0}")]
    NotTs(String),
    /// Not whole 188-byte packets.
    #[error("the media is {0} bytes, not a whole number of 188-byte MPEG-TS packets")]
    NotWholePackets(usize),
}

/// The clip archives are made of.
#[derive(Debug, Clone)]
pub struct Media {
    clip: std::sync::Arc<[u8]>,
    /// The clip's length on the 90 kHz clock, if it has timestamps.
    period: Option<u64>,
    max_bytes: usize,
}

impl Media {
    /// The bundled clip, with the default size limit.
    pub fn bundled() -> Self {
        // The bundled clip is known good; `from_ts` cannot fail for it.
        Self::from_ts(BUNDLED_CLIP.to_vec()).unwrap_or_else(|_| Self {
            clip: BUNDLED_CLIP.into(),
            period: None,
            max_bytes: crate::config::DEFAULT_MAX_MEDIA_BYTES,
        })
    }

    /// A clip of whole MPEG-TS packets.
    pub fn from_ts(clip: Vec<u8>) -> Result<Self, MediaError> {
        looks_like_ts(&clip).map_err(|e| MediaError::NotTs(e.to_string()))?;
        if !clip.len().is_multiple_of(PACKET) {
            return Err(MediaError::NotWholePackets(clip.len()));
        }
        let mut inspector = TsInspector::new();
        inspector.feed(&clip);
        let report = inspector.finish();
        let period = report
            .pts_duration_seconds
            .map(|s| (s * PTS_HZ).round() as u64)
            .filter(|&ticks| ticks > 0);
        Ok(Self {
            clip: clip.into(),
            period,
            max_bytes: crate::config::DEFAULT_MAX_MEDIA_BYTES,
        })
    }

    /// Caps the archives made at `max_bytes` (at least one copy of the clip is always made).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The clip's size.
    pub fn clip_len(&self) -> usize {
        self.clip.len()
    }

    /// The clip's length, if it has timestamps.
    pub fn clip_duration(&self) -> Option<Duration> {
        self.period
            .map(|ticks| Duration::from_secs_f64(ticks as f64 / PTS_HZ))
    }

    /// The longest recording an archive can hold whole: the size limit, in whole copies of the clip (`None`
    /// for a clip without timestamps, which is never repeated).
    pub fn max_recorded(&self) -> Option<Duration> {
        let period = self.period?;
        let cap = (self.max_bytes / self.clip.len().max(1)).max(1) as u64;
        Some(Duration::from_secs_f64((cap * period) as f64 / PTS_HZ))
    }

    /// How many copies of the clip an archive recorded for `recorded` holds.
    pub fn copies_for(&self, recorded: Duration) -> usize {
        let Some(period) = self.period else { return 1 };
        let ticks = (recorded.as_secs_f64() * PTS_HZ).ceil() as u64;
        let wanted = ticks.div_ceil(period).max(1);
        let cap = (self.max_bytes / self.clip.len().max(1)).max(1) as u64;
        wanted.min(cap) as usize
    }

    /// The archive's bytes for `recorded` time.
    pub fn build(&self, recorded: Duration) -> Vec<u8> {
        let copies = self.copies_for(recorded);
        let (Some(period), true) = (self.period, copies > 1) else {
            return self.clip.to_vec();
        };
        let mut out = Vec::with_capacity(self.clip.len() * copies);
        let mut next_cc = vec![None::<u8>; 0x2000];
        for copy in 0..copies as u64 {
            let shift = (copy * period) % PTS_WRAP;
            let start = out.len();
            out.extend_from_slice(&self.clip);
            for packet in out[start..].chunks_exact_mut(PACKET) {
                rewrite_packet(packet, shift, &mut next_cc);
            }
        }
        out
    }
}

/// Moves a packet's timestamps on by `shift` (90 kHz) and sets its continuity counter to follow the last one
/// written on its PID.
fn rewrite_packet(p: &mut [u8], shift: u64, next_cc: &mut [Option<u8>]) {
    if p.len() != PACKET || p[0] != 0x47 {
        return;
    }
    let pid = (usize::from(p[1] & 0x1F) << 8) | usize::from(p[2]);
    if pid == 0x1FFF {
        return;
    }
    let pusi = p[1] & 0x40 != 0;
    let afc = (p[3] >> 4) & 0x3;
    let has_payload = afc & 0x1 != 0;
    let has_af = afc & 0x2 != 0;
    if has_payload {
        let cc = next_cc[pid].unwrap_or(p[3] & 0x0F);
        p[3] = (p[3] & 0xF0) | cc;
        next_cc[pid] = Some((cc + 1) & 0x0F);
    }
    let mut payload = 4;
    if has_af {
        let af_len = usize::from(p[4]);
        if 5 + af_len > PACKET {
            return;
        }
        if af_len >= 7 && p[5] & 0x10 != 0 {
            shift_pcr(&mut p[6..12], shift);
        }
        payload = 5 + af_len;
    }
    if !(has_payload && pusi) || payload + 9 > PACKET || p[payload..payload + 3] != [0, 0, 1] {
        return;
    }
    let stream_id = p[payload + 3];
    // Streams without the optional PES header (padding, private_stream_2, ECM, EMM, DSMCC, H.222.1 E).
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    ) {
        return;
    }
    let flags = p[payload + 7] >> 6;
    let pts_at = payload + 9;
    if flags & 0x2 != 0 && pts_at + 5 <= PACKET {
        shift_timestamp(&mut p[pts_at..pts_at + 5], shift);
        if flags == 0x3 && pts_at + 10 <= PACKET {
            shift_timestamp(&mut p[pts_at + 5..pts_at + 10], shift);
        }
    }
}

/// A 33-bit PTS/DTS in its 5-byte PES form, with its 4-bit prefix and marker bits kept.
fn shift_timestamp(b: &mut [u8], shift: u64) {
    let ts = (u64::from(b[0] >> 1) & 0x7) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1);
    let ts = (ts + shift) % PTS_WRAP;
    b[0] = (b[0] & 0xF0) | (((ts >> 29) as u8) & 0x0E) | 0x01;
    b[1] = (ts >> 22) as u8;
    b[2] = (((ts >> 14) as u8) & 0xFE) | 0x01;
    b[3] = (ts >> 7) as u8;
    b[4] = (((ts << 1) as u8) & 0xFE) | 0x01;
}

/// A PCR (33-bit base on the 90 kHz clock, 6 reserved bits, 9-bit extension): the base moves on by `shift`.
fn shift_pcr(b: &mut [u8], shift: u64) {
    let base = u64::from(b[0]) << 25
        | u64::from(b[1]) << 17
        | u64::from(b[2]) << 9
        | u64::from(b[3]) << 1
        | u64::from(b[4] >> 7);
    let base = (base + shift) % PTS_WRAP;
    b[0] = (base >> 25) as u8;
    b[1] = (base >> 17) as u8;
    b[2] = (base >> 9) as u8;
    b[3] = (base >> 1) as u8;
    b[4] = (((base & 1) as u8) << 7) | (b[4] & 0x7F);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn inspect(bytes: &[u8]) -> archive_core::mpegts::TsReport {
        let mut inspector = TsInspector::new();
        inspector.feed(bytes);
        inspector.finish()
    }

    #[test]
    fn the_bundled_clip_lasts_about_four_seconds() {
        let media = Media::bundled();
        let d = media.clip_duration().unwrap().as_secs_f64();
        assert!((d - 4.032).abs() < 0.01, "{d}");
        assert_eq!(media.copies_for(Duration::ZERO), 1);
        assert_eq!(media.copies_for(Duration::from_secs(4)), 1);
        assert_eq!(media.copies_for(Duration::from_secs(5)), 2);
        assert_eq!(media.copies_for(Duration::from_secs(60)), 15);
    }

    #[test]
    fn repeated_clips_form_one_continuous_stream() {
        let media = Media::bundled();
        let bytes = media.build(Duration::from_secs(20));
        assert_eq!(bytes.len(), 5 * media.clip_len());
        let report = inspect(&bytes);
        assert_eq!(report.continuity_errors, 0, "{report:?}");
        assert_eq!(report.timestamp_jumps, 0, "{report:?}");
        let duration = report.duration_seconds.unwrap();
        assert!((duration - 5.0 * 4.032).abs() < 0.05, "{duration}");
        // The first copy is the clip itself.
        assert_eq!(&bytes[..media.clip_len()], BUNDLED_CLIP);
    }

    #[test]
    fn the_size_cap_holds_and_keeps_one_copy() {
        let media = Media::bundled().with_max_bytes(3 * BUNDLED_CLIP.len() + 10);
        assert_eq!(media.copies_for(Duration::from_secs(3600)), 3);
        let tiny = Media::bundled().with_max_bytes(1);
        assert_eq!(
            tiny.build(Duration::from_secs(3600)).len(),
            BUNDLED_CLIP.len()
        );
    }

    #[test]
    fn timestamps_round_trip_with_their_marker_bits() {
        let mut b = [0x21, 0x00, 0x01, 0x00, 0x01];
        shift_timestamp(&mut b, (1 << 33) - 1);
        // 0 + (2^33 - 1) = all ones.
        assert_eq!(b, [0x2F, 0xFF, 0xFF, 0xFF, 0xFF]);
        shift_timestamp(&mut b, 1);
        assert_eq!(b, [0x21, 0x00, 0x01, 0x00, 0x01], "wraps at 2^33");
        let mut pcr = [0, 0, 0, 0, 0x7E, 0x05];
        shift_pcr(&mut pcr, 3);
        assert_eq!(pcr, [0, 0, 0, 1, 0xFE, 0x05]);
    }

    #[test]
    fn non_ts_media_is_refused() {
        assert!(matches!(
            Media::from_ts(vec![0; 400]),
            Err(MediaError::NotTs(_))
        ));
        let mut odd = BUNDLED_CLIP.to_vec();
        odd.push(0);
        assert!(matches!(
            Media::from_ts(odd),
            Err(MediaError::NotWholePackets(_))
        ));
    }
}
