//! Text from the network made safe to show: control characters escaped for a terminal, and CSV cells that a
//! spreadsheet would run as formulas neutralised.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1: escape sequences, carriage returns, bells) written as a
/// Rust escape (`\u{1b}`, `\r`, `\n`), so that text from the service or a callback never drives a terminal.
///
/// ```
/// assert_eq!(archive_db::escape_controls("plain ünïcode"), "plain ünïcode");
/// assert_eq!(archive_db::escape_controls("a\x1b[2Jb\r\n"), "a\\u{1b}[2Jb\\r\\n");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A CSV cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) prefixed with `'`, as OWASP's "CSV injection" advice says; any other cell unchanged.
///
/// ```
/// assert_eq!(archive_db::neutralise_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
/// assert_eq!(archive_db::neutralise_formula("weekly"), "weekly");
/// ```
pub fn neutralise_formula(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}
