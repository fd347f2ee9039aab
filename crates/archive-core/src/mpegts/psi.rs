//! PSI tables: PAT and PMT section assembly, CRC-32/MPEG-2, and what a stream_type says a stream is.

use super::audio::Framing;
use super::inspector::{Declared, Role, TsInspector};
use super::report::{StreamKind, TsProgram};
use super::{MAX_PSI_BUFFER, MAX_PSI_SECTION_LENGTH, PID_NULL, PID_PAT};

/// PIDs reserved for tables: PAT, CAT, TSDT, IPMP, DVB and ATSC SI (0x0000 to 0x001F), ATSC PSIP base (0x1FFB).
pub(super) fn is_table_pid(pid: u16) -> bool {
    pid <= 0x001F || pid == 0x1FFB
}

/// CRC-32/MPEG-2 (PSI sections). Over a whole section, CRC field included, it is 0.
pub(super) fn crc32_mpeg2(data: &[u8]) -> u32 {
    // The algorithm's width is 32 bits: the value fits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Mpeg2, data) as u32
}

/// Codec name and kind for a PMT stream_type and its ES descriptors.
pub(super) fn describe_stream(stream_type: u8, descriptors: &[u8]) -> (&'static str, StreamKind) {
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
pub(super) fn describe_private_pes(mut descriptors: &[u8]) -> (&'static str, StreamKind) {
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
    /// Payload of a PSI PID (PAT, PMT): assembles sections across packets and handles each complete one.
    pub(super) fn psi(&mut self, slot: usize, pusi: bool, payload: &[u8]) {
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
    pub(super) fn sections(&mut self, slot: usize, buf: &mut Vec<u8>) {
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
    pub(super) fn section(&mut self, slot: usize, s: &[u8]) {
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

    pub(super) fn pat(&mut self, body: &[u8]) -> bool {
        if !body.len().is_multiple_of(4) {
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

    pub(super) fn pmt(&mut self, pmt_pid: u16, program_number: u16, body: &[u8]) -> bool {
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
