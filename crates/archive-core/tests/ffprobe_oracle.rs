//! `archive_core::mpegts` against ffprobe, on clips that ffmpeg makes now in a temporary directory (and one committed
//! clip, HEVC and Opus, that not every ffmpeg can encode: `tests/data/README.md`).
//!
//! ffmpeg and ffprobe must be on PATH (CI installs them: `apt-get install ffmpeg`). Without them these tests fail
//! with a message saying so, unless `ARCHIVECTL_SKIP_MEDIA_TESTS=1` is set.
//!
//! What is compared, per clip: the streams (PID and codec) with ffprobe's, and our duration with ffprobe's
//! `format=duration` (within 0.1 s) and with the end of ffprobe's last packet (max of pts + duration, minus the
//! lowest pts, over every demuxed and parsed packet: within 5 ms where we know each PES's length exactly).

use std::path::Path;
use std::process::Command;

use archive_core::mpegts::{self, TsInspector, TsReport};
use serde_json::Value;

const SKIP_VAR: &str = "ARCHIVECTL_SKIP_MEDIA_TESTS";

/// Whether ffmpeg and ffprobe can run; panics (with what to do) if not and skipping was not asked for.
fn media_tools() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = ["ffmpeg", "ffprobe"]
        .into_iter()
        .filter(|t| !runs(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!(
            "skipping: {} not found and {SKIP_VAR}=1",
            missing.join(" and ")
        );
        return false;
    }
    panic!(
        "{} not found on PATH: these tests compare our MPEG-TS duration with ffprobe's. Install ffmpeg \
         (`apt-get install ffmpeg`) or set {SKIP_VAR}=1 to skip them.",
        missing.join(" and ")
    );
}

/// Makes `seconds` of testsrc2 at `fps` and a sine tone, encoded with `codec_args`, as MPEG-TS at `out`.
fn make_clip(out: &Path, seconds: u32, fps: u32, codec_args: &[&str]) {
    let video = format!("testsrc2=size=320x240:rate={fps}:duration={seconds}");
    let audio = format!("sine=frequency=440:sample_rate=48000:duration={seconds}");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            &audio,
        ])
        .args(["-map", "0:v", "-map", "1:a"])
        .args(codec_args)
        .args(["-f", "mpegts"])
        .arg(out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {codec_args:?} failed");
}

fn ffprobe_json(path: &Path, args: &[&str]) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        output.status.success(),
        "ffprobe {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe JSON")
}

/// What ffprobe says of a file: `format=duration`, the end of its last packet, and its streams (PID, codec name).
struct Probe {
    format_duration: f64,
    packets_duration: f64,
    streams: Vec<(u16, String)>,
}

fn number(v: &Value) -> Option<f64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
}

fn probe(path: &Path) -> Probe {
    let info = ffprobe_json(
        path,
        &["-show_entries", "format=duration:stream=id,codec_name"],
    );
    let format_duration = number(&info["format"]["duration"]).expect("format duration");
    let streams = info["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let id = s["id"].as_str().expect("stream id");
            let pid = u16::from_str_radix(id.trim_start_matches("0x"), 16).expect("hex PID");
            (
                pid,
                s["codec_name"].as_str().expect("codec_name").to_string(),
            )
        })
        .collect();
    let packets = ffprobe_json(path, &["-show_entries", "packet=pts,duration"]);
    let (mut first, mut end) = (i64::MAX, i64::MIN);
    for p in packets["packets"].as_array().expect("packets") {
        let (Some(pts), Some(duration)) = (p["pts"].as_i64(), p["duration"].as_i64()) else {
            continue;
        };
        first = first.min(pts);
        end = end.max(pts + duration);
    }
    assert!(first < end, "ffprobe listed no timed packets");
    Probe {
        format_duration,
        packets_duration: (end - first) as f64 / 90_000.0,
        streams,
    }
}

/// Our report, feeding the file in odd-sized pieces as a streaming decrypt would.
fn inspect(path: &Path) -> TsReport {
    let bytes = std::fs::read(path).expect("read clip");
    mpegts::looks_like_ts(&bytes).expect("ffmpeg's output is MPEG-TS");
    let mut inspector = TsInspector::new();
    for chunk in bytes.chunks(65_537) {
        inspector.feed(chunk);
    }
    inspector.finish()
}

fn our_codec(ffprobe_codec: &str) -> &'static str {
    match ffprobe_codec {
        "h264" => "H.264",
        "hevc" => "HEVC",
        "aac" => "AAC (ADTS)",
        "mpeg2video" => "MPEG-2 video",
        "mp2" | "mp3" => "MPEG audio",
        "opus" => "Opus",
        other => panic!("no expectation for ffprobe codec {other}"),
    }
}

/// Makes a clip, checks it against ffprobe; `exact_end` when every stream's last PES length is known exactly.
fn check(name: &str, seconds: u32, fps: u32, codec_args: &[&str], exact_end: bool) -> TsReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("{name}.ts"));
    make_clip(&path, seconds, fps, codec_args);
    check_file(name, &path, seconds, exact_end)
}

/// Checks the clip at `path` (`seconds` long) against ffprobe.
fn check_file(name: &str, path: &Path, seconds: u32, exact_end: bool) -> TsReport {
    let path = path.to_path_buf();
    let probe = probe(&path);
    let report = inspect(&path);
    let ours = report.duration_seconds.expect("a duration");
    eprintln!(
        "{name}: ours {ours:.6} s, ffprobe format=duration {:.6} s, ffprobe packets {:.6} s, PCR {:?} s",
        probe.format_duration, probe.packets_duration, report.pcr_duration_seconds
    );

    let ours_streams: Vec<(u16, &str)> = report.streams.iter().map(|s| (s.pid, s.codec)).collect();
    let expected: Vec<(u16, &str)> = probe
        .streams
        .iter()
        .map(|(pid, codec)| (*pid, our_codec(codec)))
        .collect();
    assert_eq!(ours_streams, expected, "{name}: streams");
    assert_eq!(report.continuity_errors, 0, "{name}");
    assert_eq!(report.trailing_bytes, 0, "{name}");
    assert_eq!(report.sync_losses, 0, "{name}");
    assert_eq!(report.psi_errors, 0, "{name}");
    assert_eq!(report.timestamp_jumps, 0, "{name}");
    assert!(
        (ours - probe.format_duration).abs() < 0.1,
        "{name}: ours {ours} s, ffprobe format=duration {} s",
        probe.format_duration
    );
    if exact_end {
        assert!(
            (ours - probe.packets_duration).abs() < 0.005,
            "{name}: ours {ours} s, end of ffprobe's last packet {} s",
            probe.packets_duration
        );
    }
    let pcr = report.pcr_duration_seconds.expect("PCR duration");
    assert!(
        pcr > f64::from(seconds) - 0.5 && pcr <= ours,
        "{name}: PCR duration {pcr}"
    );
    report
}

#[test]
fn h264_aac_with_b_frames_7s_at_25fps() {
    if !media_tools() {
        return;
    }
    // libx264's defaults (High profile, B-frames: PTS out of order), AAC at 44.1 kHz (frames of 1024/44100 s).
    let report = check(
        "h264_aac",
        7,
        25,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar",
            "44100", "-b:a", "96k",
        ],
        true,
    );
    assert!((report.streams[0].duration_seconds.expect("video duration") - 7.0).abs() < 1e-6);
}

#[test]
fn pts_wraparound_inside_the_clip() {
    if !media_tools() {
        return;
    }
    // The 33-bit PTS clock wraps at 95443.72 s: start 3 s before, so it wraps in the middle of the clip.
    let report = check(
        "wrap",
        7,
        25,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-output_ts_offset",
            "95440",
        ],
        true,
    );
    let start = report.streams[0].start_seconds.expect("video start");
    assert!(start > 95_440.0, "{start}");
}

#[test]
fn mpeg2_video_and_mp2_audio() {
    if !media_tools() {
        return;
    }
    // MPEG audio PES lengths are estimated from the PTS step (not counted), so only format=duration is compared.
    check(
        "mpeg2_mp2",
        7,
        25,
        &["-c:v", "mpeg2video", "-c:a", "mp2"],
        false,
    );
}

#[test]
fn hevc_and_opus() {
    if !media_tools() {
        return;
    }
    // A committed clip (tests/data/README.md says how it was made): ffmpeg builds without libx265 or
    // libopus cannot make one, and every build of ffprobe reads it.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hevc_opus.ts");
    assert!(path.is_file(), "missing fixture {}", path.display());
    // Opus packets are counted from their control headers and TOC bytes.
    let report = check_file("hevc_opus", &path, 3, true);
    let codecs: Vec<&str> = report.streams.iter().map(|s| s.codec).collect();
    assert_eq!(codecs, ["HEVC", "Opus"]);
}
