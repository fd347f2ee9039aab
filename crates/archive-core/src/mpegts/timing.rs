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
        seg.max_pts + seg.max_pts_duration.or(self.min_step).unwrap_or(0)
    }

    pub(super) fn segment_ticks(&self) -> i64 {
        self.segment
            .map_or(0, |seg| self.segment_end(&seg) - seg.min_pts)
    }

    pub(super) fn total_ticks(&self) -> i64 {
        self.closed_ticks + self.segment_ticks()
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
        self.closed_ticks += self.segment_ticks();
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

/// The PCRs of one PID, in unwrapped 27 MHz ticks.
#[derive(Debug, Clone)]
pub(super) struct PcrTrack {
    pub(super) pid: u16,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) closed_ticks: i64,
    pub(super) count: u64,
}

/// `value` (a timestamp modulo `modulus`) placed on the unwrapped timeline as close as possible to `reference`.
pub(super) fn unwrap_near(value: i64, reference: i64, modulus: i64) -> i64 {
    let mut step = (value - reference).rem_euclid(modulus);
    if step >= modulus / 2 {
        step -= modulus;
    }
    reference + step
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
