//! Unit tests of the MPEG-TS inspector.

use super::audio::Opus;
use super::psi::{crc32_mpeg2, describe_stream};
use super::timing::{parse_pcr, parse_timestamp, unwrap_near, wrapped_step};
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
        (r.streams[1].duration_seconds.unwrap() - f64::from(audio_frames) * 1024.0 / 48000.0).abs()
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

/// Adaptation-field-only packets on `pid`, each with a PCR: the PCR of packet `i` is `pcr(i)` (modulo 2^33 × 300).
fn pcr_packets(pid: u16, range: std::ops::Range<u64>, pcr: impl Fn(u64) -> u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(PACKET * (range.end - range.start) as usize);
    for i in range {
        let mut p = [0xFFu8; PACKET];
        p[..6].copy_from_slice(&[SYNC, (pid >> 8) as u8, pid as u8, 0x20, 183, 0x10]);
        p[6..12].copy_from_slice(&encode_pcr(pcr(i) % PCR_MODULUS as u64));
        out.extend_from_slice(&p);
    }
    out
}

/// Issue 11: a crafted stream whose PCR steps forwards by just under half its modulus in every packet used to
/// push the unwrapped PCR past `i64::MAX` after about 7.2 million packets (1.3 GB): an overflow panic in a debug
/// build, a wrapped (wrong) duration in release. Each such step is a timestamp jump; nothing overflows.
#[test]
fn pcr_stepping_half_its_modulus_for_millions_of_packets_does_not_overflow() {
    let step = PCR_MODULUS as u64 / 2 - 1;
    let packets: u64 = 7_500_000;
    assert!(
        (packets as i128) * (step as i128) > i64::MAX as i128,
        "enough packets to overflow an i64 timeline"
    );
    let mut inspector = TsInspector::new();
    let batch = 50_000;
    for start in (0..packets).step_by(batch) {
        let end = (start + batch as u64).min(packets);
        inspector.feed(&pcr_packets(0x100, start..end, |i| {
            ((i as u128 * step as u128) % PCR_MODULUS as u128) as u64
        }));
    }
    let r = inspector.finish();
    assert_eq!(r.packets, packets);
    assert_eq!(r.timestamp_jumps, packets - 1);
    assert_eq!(r.pcr_duration_seconds, Some(0.0));
}

/// The PCR timeline keeps its length across jumps and wraps: 10 s, a jump, 5 s across the 2^33 × 300 wrap.
#[test]
fn pcr_spans_add_up_across_jumps_and_wraps() {
    let second = 27_000_000u64;
    let wrap_at = PCR_MODULUS as u64 - 2 * second;
    let mut data = pcr_packets(0x100, 0..11, |i| i * second);
    data.extend(pcr_packets(0x100, 0..6, |i| wrap_at + i * second));
    let r = inspect(&data);
    assert_eq!(r.timestamp_jumps, 1);
    assert!(
        (r.pcr_duration_seconds.unwrap() - 15.0).abs() < 1e-9,
        "{r:?}"
    );
}

/// Issue 11: the PTS timeline of a PID cannot be pushed past `i64::MAX` either. About 2^31 PES, each a jump of
/// just under 2^32 ticks, would take 400 GB, so this starts from the state they would leave: the PID's previous
/// PTS near the end of the unwrapped timeline, then a 40 ms step and a jump forwards of 2^32 − 1 ticks.
#[test]
fn pts_unwrapping_near_the_end_of_i64_does_not_overflow() {
    let far = i64::MAX - 8000;
    let p0 = far.rem_euclid(PTS_MODULUS) as u64;
    let pes = |pts: u64| {
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
        pes.extend_from_slice(&encode_pts(0x20, pts % (1 << 33)));
        pes.extend_from_slice(&[0u8; 20]);
        pes
    };
    let mut mux = Mux::default();
    mux.write(0x100, true, None, &pes(p0));
    let mut inspector = TsInspector::new();
    inspector.feed(&mux.out);
    let slot = inspector.slot(0x100);
    inspector.pids[slot].timing.prev_pts = Some(far);
    inspector.pids[slot].timing.open_pts = Some(far);
    mux.out.clear();
    mux.write(0x100, true, None, &pes(p0 + 3600));
    mux.write(0x100, true, None, &pes(p0 + 3600 + (1 << 32) - 1));
    inspector.feed(&mux.out);
    let r = inspector.finish();
    assert_eq!(r.timestamp_jumps, 1, "{r:?}");
    // Two spans of one frame each after the first PES: 40 ms + 40 ms, and the first PES's 40 ms.
    assert!((r.duration_seconds.unwrap() - 0.12).abs() < 1e-9, "{r:?}");
}

/// Wrapped steps and unwrapping never overflow, whatever the values (outside numbers, or a timeline's far end).
#[test]
fn wrapped_steps_never_overflow() {
    for (value, reference) in [
        (0, i64::MAX),
        (PTS_MODULUS - 1, i64::MIN),
        (i64::MAX, i64::MIN),
        (i64::MIN, i64::MAX),
    ] {
        let step = wrapped_step(value, reference, PTS_MODULUS);
        assert!(
            (-PTS_MODULUS / 2..PTS_MODULUS / 2).contains(&step),
            "{step}"
        );
        let _ = unwrap_near(value, reference, PTS_MODULUS);
    }
    assert_eq!(wrapped_step(10, PTS_MODULUS - 10, PTS_MODULUS), 20);
    assert!(unwrap_near(0, i64::MAX, PCR_MODULUS) >= i64::MAX - PCR_MODULUS / 2);
}
