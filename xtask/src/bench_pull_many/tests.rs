//! Unit tests of the pull-many report: medians, ratios, the server's share, shell quoting.
use super::*;

fn sample(seconds: f64, rss: u64) -> Measured {
    Measured {
        sample: Sample {
            seconds,
            max_rss_kib: rss,
            user_seconds: seconds / 2.0,
            sys_seconds: seconds / 4.0,
        },
        server_seconds: seconds / 5.0,
    }
}

#[test]
fn the_table_takes_medians_of_times_and_the_largest_rss() {
    let table = Table::of(&[vec![sample(7.0, 100), sample(5.0, 300), sample(6.0, 200)]]);
    let row = &table.rows[0];
    assert_eq!(row.wall, 6.0);
    assert_eq!(row.user, 3.0);
    assert_eq!(row.sys, 1.5);
    assert_eq!(row.server, 1.2);
    assert_eq!(row.rss_kib, 300, "the worst peak, not a median");
}

#[test]
fn the_servers_share_is_of_the_core_seconds_the_run_had() {
    let row = |wall: f64, user: f64, sys: f64, server: f64| Row {
        wall,
        user,
        sys,
        server,
        rss_kib: 0,
    };
    let table = Table {
        rows: vec![row(3.0, 2.0, 1.0, 2.4), row(4.0, 2.5, 1.5, 2.0)],
    };
    let text = server_share(&table.rows[0], &table.rows[1], 2.0);
    // pull --all: 3 s on 2 cores is 6 core-seconds; the server's 2.4 s is 40%, 5.4 of 6 is 90% busy.
    assert!(
        text.contains("the client 3.00 s of CPU and s3s-fs 2.40 s, 40% of the 6.00 core-seconds the run had (the machine 90% busy)"),
        "{text}"
    );
    // The openssl pipeline: 2 of 8 core-seconds, 75% busy.
    assert!(
        text.contains(
            "s3s-fs 2.00 s, 25% of the 8.00 core-seconds the run had (the machine 75% busy)"
        ),
        "{text}"
    );
    assert!(text.contains("used 3.00 s of CPU against 4.00 s"), "{text}");
}

#[test]
fn ratios_say_how_many_times_faster() {
    assert_eq!(ratio(7.0, 5.0), 1.4);
    assert_eq!(ratio(5.0, 5.0), 1.0);
    assert!(ratio(1.0, 0.0).is_infinite());
}

#[test]
fn recorded_seconds_make_the_asked_size() {
    // A 1 MiB clip: 37 copies for 37 MiB.
    assert_eq!(recorded_seconds(37, 1 << 20), 37);
    // A 1,000,000-byte clip: 37 MiB is 38.8 copies, rounded to 39.
    assert_eq!(recorded_seconds(37, 1_000_000), 39);
    // Never zero.
    assert_eq!(recorded_seconds(1, 100 << 20), 1);
}

#[test]
fn shell_lines_quote_everything() {
    let mut cmd = Command::new("aws");
    cmd.args(["s3", "it's"]).env("K", "v w");
    assert_eq!(shell_line(&cmd), r"K='v w' 'aws' 's3' 'it'\''s'");
}
