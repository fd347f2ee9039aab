//! Property tests of the `Content-Range` parsing a presigned download relies on (issue 11): the header comes
//! from a server, so any value is read or refused without a panic, and a well-formed one gives its start.
//! `PROPTEST_CASES` raises the case count.

use proptest::prelude::*;
use storage_fetch::content_range_start;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text: a start or nothing, never a panic.
    #[test]
    fn any_value_is_read_or_refused(value in "\\PC{0,64}", bytes in "bytes [0-9*/ -]{0,40}") {
        let _ = content_range_start(&value);
        let _ = content_range_start(&bytes);
    }

    /// `bytes START-END/TOTAL` (TOTAL may be `*`) gives START.
    #[test]
    fn a_well_formed_range_gives_its_start(start in any::<u64>(), len in any::<u64>(), total in proptest::option::of(any::<u64>())) {
        let end = start.saturating_add(len);
        let total = total.map_or("*".to_string(), |t| t.to_string());
        prop_assert_eq!(content_range_start(&format!("bytes {start}-{end}/{total}")), Some(start));
    }

    /// Numbers past u64, signs, and other units are refused.
    #[test]
    fn out_of_range_or_other_units_are_refused(digits in "[1-9][0-9]{20,30}", unit in "[a-z]{1,8}") {
        prop_assert_eq!(content_range_start(&format!("bytes {digits}-1/2")), None);
        prop_assume!(unit != "bytes");
        prop_assert_eq!(content_range_start(&format!("{unit} 1-2/3")), None);
        prop_assert_eq!(content_range_start("bytes -5-10/20"), None);
    }
}
