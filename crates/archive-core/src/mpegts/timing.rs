//! Timestamps: PTS spans per PID, the PCR track, and 33-bit wrap-around.

/// PTS bookkeeping of one PID, in unwrapped 90 kHz ticks.
#[derive(Debug, Clone, Default)]
pub(super) struct Timing {
    /// The PES being received: its PTS (unwrapped). `None` when it has none.
    pub(super) open_pts: Option<i64>,
    /// PTS of the previous PES (unwrapped).
    pub(super) prev_pts: Option<i64>,
    /// Smallest positive step between consecutive PTS: one frame.
    pub(super) min_step: Option<i64>,
    pub(super) pes_with_pts: u64,
    /// The current span between timestamp jumps.
    pub(super) segment: Option<Segment>,
    /// Sum of the spans closed by timestamp jumps.
    pub(super) closed_ticks: i64,
    /// Lowest PTS of the first span (unwrapped), once a jump closed it.
    pub(super) first_start: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub(super) min_pts: i64,
    pub(super) max_pts: i64,
    /// Duration of the PES holding `max_pts`, when it is known exactly (ADTS).
    pub(super) max_pts_duration: Option<i64>,
}

impl Timing {
    /// The end of the current span: the last frame's PTS plus its duration.
    pub(super) fn segment_end(&self, seg: &Segment) -> i64 {
        seg.max_pts
            .saturating_add(seg.max_pts_duration.or(self.min_step).unwrap_or(0))
    }

    pub(super) fn segment_ticks(&self) -> i64 {
        self.segment
            .map_or(0, |seg| self.segment_end(&seg).saturating_sub(seg.min_pts))
    }

    pub(super) fn total_ticks(&self) -> i64 {
        self.closed_ticks.saturating_add(self.segment_ticks())
    }

    /// The lowest PTS of the first span.
    pub(super) fn start(&self) -> Option<i64> {
        self.first_start.or(self.segment.map(|seg| seg.min_pts))
    }

    /// A timestamp jump: the current span ends, the next PES starts a new one.
    pub(super) fn jump(&mut self) {
        if self.first_start.is_none() {
            self.first_start = self.segment.map(|seg| seg.min_pts);
        }
        self.closed_ticks = self.closed_ticks.saturating_add(self.segment_ticks());
        self.segment = None;
    }

    /// Records a finished PES of `pts` that lasted `duration` ticks (if known).
    pub(super) fn close(&mut self, pts: i64, duration: Option<i64>) {
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

/// The PCRs of one PID in 27 MHz ticks: the last one as read (modulo 2^33 × 300) and the time elapsed, summed
/// step by step, so that no value grows with the number of packets (a crafted stream stepping half the modulus
/// in every packet would otherwise overflow an unwrapped timeline after a few million packets).
#[derive(Debug, Clone)]
pub(super) struct PcrTrack {
    pub(super) pid: u16,
    /// The last PCR, as read.
    pub(super) last: i64,
    /// The current span between timestamp jumps.
    pub(super) span_ticks: i64,
    /// Sum of the spans closed by timestamp jumps.
    pub(super) closed_ticks: i64,
    pub(super) count: u64,
}

impl PcrTrack {
    /// The first PCR of `pid`.
    pub(super) fn new(pid: u16, value: i64) -> Self {
        Self {
            pid,
            last: value,
            span_ticks: 0,
            closed_ticks: 0,
            count: 1,
        }
    }

    /// The next PCR of the track: a step forwards of at most `max_step` ticks is elapsed time; anything else is a
    /// timestamp jump (returns `true`), which closes the current span.
    pub(super) fn next(&mut self, value: i64, modulus: i64, max_step: i64) -> bool {
        let step = wrapped_step(value, self.last, modulus);
        self.last = value;
        self.count += 1;
        if (0..=max_step).contains(&step) {
            self.span_ticks = self.span_ticks.saturating_add(step);
            false
        } else {
            self.closed_ticks = self.closed_ticks.saturating_add(self.span_ticks);
            self.span_ticks = 0;
            true
        }
    }

    /// The time measured: the spans between jumps, added up.
    pub(super) fn total_ticks(&self) -> i64 {
        self.closed_ticks.saturating_add(self.span_ticks)
    }
}

/// The signed step from `reference` to `value` on a clock that counts modulo `modulus` (the nearest way round:
/// from −modulus/2 to modulus/2 − 1). Never overflows, whatever the two values.
pub(super) fn wrapped_step(value: i64, reference: i64, modulus: i64) -> i64 {
    let mut step = (value.rem_euclid(modulus) - reference.rem_euclid(modulus)).rem_euclid(modulus);
    if step >= modulus / 2 {
        step -= modulus;
    }
    step
}

/// `value` (a timestamp modulo `modulus`) placed on the unwrapped timeline as close as possible to `reference`
/// (saturating at the ends of `i64`).
pub(super) fn unwrap_near(value: i64, reference: i64, modulus: i64) -> i64 {
    reference.saturating_add(wrapped_step(value, reference, modulus))
}

/// A 33-bit PTS/DTS from its 5 bytes, if the marker bits are set.
pub(super) fn parse_timestamp(b: &[u8]) -> Option<i64> {
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
pub(super) fn parse_pcr(b: &[u8]) -> Option<i64> {
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
