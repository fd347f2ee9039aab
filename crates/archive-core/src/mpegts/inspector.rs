//! The incremental inspector: packet sync, continuity, PES timestamps and the report at the end.

use std::fmt;

use super::audio::Framing;
use super::psi::is_table_pid;
use super::report::{DurationSource, StreamKind, TsProgram, TsReport, TsStream};
use super::timing::{PcrTrack, Timing, parse_pcr, parse_timestamp, unwrap_near, wrapped_step};
use super::{
    LOOKAHEAD, MAX_PCR_STEP, MAX_PTS_BACKSTEP, MAX_PTS_STEP, NO_SLOT, PACKET, PCR_HZ, PCR_MODULUS,
    PID_COUNT, PID_NULL, PID_PAT, PTS_HZ, PTS_MODULUS, SYNC,
};

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
    pub(super) carry: Vec<u8>,
    pub(super) synced: bool,
    pub(super) bytes: u64,
    pub(super) packets: u64,
    pub(super) skipped_bytes: u64,
    pub(super) sync_losses: u64,
    pub(super) transport_errors: u64,
    pub(super) null_packets: u64,
    pub(super) malformed_packets: u64,
    pub(super) psi_errors: u64,
    pub(super) continuity_errors: u64,
    pub(super) pts_jumps: u64,
    pub(super) pcr_jumps: u64,
    /// PID to index in `pids`, `NO_SLOT` if unseen.
    pub(super) slots: Vec<u16>,
    pub(super) pids: Vec<PidState>,
    pub(super) programs: Vec<TsProgram>,
    pub(super) streams: Vec<Declared>,
    /// The first PTS of the file: the reference against which each PID's first PTS is unwrapped.
    pub(super) pts_anchor: Option<i64>,
    pub(super) pcr: Option<PcrTrack>,
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
pub(super) struct Declared {
    pub(super) pid: u16,
    pub(super) program_number: u16,
    pub(super) stream_type: u8,
    pub(super) codec: &'static str,
    pub(super) kind: StreamKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
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
pub(super) enum Continuity {
    Ok,
    Duplicate,
    Error,
}

#[derive(Debug, Clone)]
pub(super) struct PidState {
    pub(super) pid: u16,
    pub(super) role: Role,
    pub(super) packets: u64,
    pub(super) last_cc: Option<u8>,
    /// The previous packet carried a payload and was in sequence: it may be repeated once.
    pub(super) may_repeat: bool,
    pub(super) continuity_errors: u64,
    /// PSI section assembly (PAT and PMT PIDs only).
    pub(super) section: Vec<u8>,
    /// CRC of the last section accepted on this PID: a repeated table is not parsed again.
    pub(super) last_crc: Option<u32>,
    /// Counts the audio frames in this PID's PES payloads (AAC in ADTS, Opus).
    pub(super) frames: Option<Framing>,
    pub(super) timing: Timing,
}

impl PidState {
    pub(super) fn new(pid: u16) -> Self {
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
    pub(super) fn continuity(
        &mut self,
        cc: u8,
        has_payload: bool,
        discontinuity: bool,
    ) -> Continuity {
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

/// Whether a PES with this stream_id has the optional header (with PTS); ISO/IEC 13818-1 table 2-21.
pub(super) fn has_optional_pes_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
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
            .map(|t| t.total_ticks() as f64 / PCR_HZ);
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
    pub(super) fn pts_duration_ticks(&self) -> Option<i64> {
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

    pub(super) fn pid(&self, pid: u16) -> Option<&PidState> {
        let slot = *self.slots.get(usize::from(pid))?;
        self.pids.get(usize::from(slot))
    }

    /// The index of `pid`'s state, created on first use.
    pub(super) fn slot(&mut self, pid: u16) -> usize {
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
    pub(super) fn process(&mut self, buf: &[u8], at_end: bool) -> usize {
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
    pub(super) fn packet(&mut self, p: &[u8]) {
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

    pub(super) fn pcr(&mut self, pid: u16, value: i64) {
        match &mut self.pcr {
            None => self.pcr = Some(PcrTrack::new(pid, value)),
            Some(track) if track.pid == pid => {
                if track.next(value, PCR_MODULUS, MAX_PCR_STEP) {
                    self.pcr_jumps += 1;
                }
            }
            Some(_) => {}
        }
    }

    /// PES payload of a PID that is not PSI: PTS from PES headers, AAC frames from ADTS headers.
    pub(super) fn pes(&mut self, slot: usize, pusi: bool, payload: &[u8]) {
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
        let pts = match timing.prev_pts {
            // The anchor is a PTS as read: no overflow.
            None => unwrap_near(raw, anchor, PTS_MODULUS),
            Some(prev) => {
                let step = wrapped_step(raw, prev, PTS_MODULUS);
                match prev.checked_add(step) {
                    Some(pts) if (-MAX_PTS_BACKSTEP..=MAX_PTS_STEP).contains(&step) => {
                        if step != 0 {
                            let step = step.abs();
                            timing.min_step = Some(timing.min_step.map_or(step, |m| m.min(step)));
                        }
                        pts
                    }
                    _ => {
                        // A jump (or the end of the timeline, after billions of crafted jumps): the span ends and
                        // the next one starts from the PTS as read. Only per-PID spans count once there was a jump,
                        // so where the new one starts does not matter, and the timeline cannot grow without bound.
                        self.pts_jumps += 1;
                        timing.jump();
                        raw
                    }
                }
            }
        };
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
    pub(super) fn close_pes(&mut self, slot: usize) {
        let state = &mut self.pids[slot];
        if let Some(pts) = state.timing.open_pts.take() {
            let duration = state.frames.as_ref().and_then(Framing::pes_ticks);
            state.timing.close(pts, duration);
        }
    }
}
