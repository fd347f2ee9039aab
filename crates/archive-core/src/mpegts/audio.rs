//! Audio framing: counting the AAC (ADTS) and Opus frames of a PES, so that its length is known.

use super::{ADTS_RATES, MAX_OPUS_PACKET};

/// Counts the audio in each PES of a PID whose PES carry several frames, so that the last one's length is known.
#[derive(Debug, Clone)]
pub(super) enum Framing {
    Adts(Adts),
    Opus(Opus),
}

impl Framing {
    pub(super) fn for_stream(stream_type: u8, codec: &str) -> Option<Self> {
        match (stream_type, codec) {
            (0x0F, _) => Some(Self::Adts(Adts::default())),
            (0x06, "Opus") => Some(Self::Opus(Opus::default())),
            _ => None,
        }
    }

    pub(super) fn start_pes(&mut self) {
        match self {
            Self::Adts(a) => a.start_pes(),
            Self::Opus(o) => o.start_pes(),
        }
    }

    pub(super) fn feed(&mut self, data: &[u8]) {
        match self {
            Self::Adts(a) => a.feed(data),
            Self::Opus(o) => o.feed(data),
        }
    }

    /// Data was lost: this PES's count cannot be trusted.
    pub(super) fn fail(&mut self) {
        match self {
            Self::Adts(a) => a.ok = false,
            Self::Opus(o) => o.ok = false,
        }
    }

    pub(super) fn pes_ticks(&self) -> Option<i64> {
        match self {
            Self::Adts(a) => a.pes_ticks(),
            Self::Opus(o) => o.pes_ticks(),
        }
    }
}

/// `samples` at `rate` Hz in 90 kHz ticks, rounded.
pub(super) fn samples_to_ticks(samples: u64, rate: u32) -> i64 {
    let ticks = (u128::from(samples) * 90_000 + u128::from(rate / 2)) / u128::from(rate.max(1));
    i64::try_from(ticks).unwrap_or(i64::MAX)
}

/// Frame counter for Opus in MPEG-TS (ETSI TS 102 366 annex: each Opus packet in a PES is preceded by a control
/// header `0x7FE` + flags, its size as a run of 0xFF bytes plus a last byte, optional trims and extension). The
/// packet's TOC byte gives the frame length and its frame count. Trims are not subtracted (as ffprobe's packet
/// durations do not subtract them).
#[derive(Debug, Clone, Default)]
pub(super) struct Opus {
    pub(super) state: OpusState,
    /// 48 kHz samples in the packets whose control header was in the current PES.
    pub(super) samples: u64,
    pub(super) ok: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum OpusState {
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
    pub(super) fn start_pes(&mut self) {
        if !self.ok {
            self.state = OpusState::Prefix;
        }
        self.ok = true;
        self.samples = 0;
    }

    /// Samples per frame at 48 kHz for a TOC byte (RFC 6716 section 3.1).
    pub(super) fn frame_samples(toc: u8) -> u64 {
        let config = toc >> 3;
        match config {
            0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
            12..=15 => [480, 960][usize::from(config % 2)],
            _ => [120, 240, 480, 960][usize::from(config % 4)],
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) {
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

    pub(super) fn pes_ticks(&self) -> Option<i64> {
        let clean = matches!(self.state, OpusState::Prefix | OpusState::Payload { .. });
        (self.ok && clean && self.samples > 0).then(|| samples_to_ticks(self.samples, 48_000))
    }
}

/// Frame counter for AAC in ADTS: walks the ADTS headers in PES payloads.
#[derive(Debug, Clone, Default)]
pub(super) struct Adts {
    /// Bytes of the current frame still to skip.
    pub(super) skip: usize,
    pub(super) header: [u8; 7],
    pub(super) header_len: usize,
    /// Samples in the frames whose header was in the current PES.
    pub(super) samples: u64,
    pub(super) rate: u32,
    /// False once something that is not an ADTS header was met in this PES.
    pub(super) ok: bool,
}

impl Adts {
    /// A new PES starts: frames are counted again; after a failure, parsing restarts at the PES payload.
    pub(super) fn start_pes(&mut self) {
        if !self.ok {
            self.skip = 0;
            self.header_len = 0;
        }
        self.ok = true;
        self.samples = 0;
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) {
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
    pub(super) fn pes_ticks(&self) -> Option<i64> {
        (self.ok && self.header_len == 0 && self.samples > 0 && self.rate > 0)
            .then(|| samples_to_ticks(self.samples, self.rate))
    }
}
