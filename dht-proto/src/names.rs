//! File names that came from someone else (a peer's manifest answer, a browser upload, a
//! user's `--name`), made safe to show and to create in a directory. Pure functions.

use crate::message::MAX_NAME_LEN;

/// The safe form of a file name: its last path component (after any `/` or `\`), without
/// control characters or surrounding white space, cut to at most [`MAX_NAME_LEN`] bytes
/// on a character boundary. `None` when nothing usable is left: an empty name, `.`, `..`,
/// or a hidden name (starting with `.`), which must not appear unnoticed in a directory.
pub fn sanitize_file_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let visible: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = visible.trim();
    let mut end = trimmed.len().min(MAX_NAME_LEN);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    let safe = trimmed[..end].trim_end();
    if safe.is_empty() || safe.starts_with('.') {
        return None;
    }
    Some(safe.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_their_last_plain_component() {
        let ok = |n: &str| sanitize_file_name(n);
        assert_eq!(ok("report.pdf").as_deref(), Some("report.pdf"));
        assert_eq!(ok("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(ok("C:\\Users\\a\\b.txt").as_deref(), Some("b.txt"));
        assert_eq!(ok("a\nb\u{7f}").as_deref(), Some("ab"));
        assert_eq!(ok("  spaced out.txt ").as_deref(), Some("spaced out.txt"));
        for refused in ["", " ", ".", "..", "x/..", ".bashrc", "dir/", "\u{0}\u{1}"] {
            assert_eq!(ok(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let cut = sanitize_file_name(&long).unwrap();
        assert_eq!(cut.len(), 254);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(
            sanitize_file_name(&"a".repeat(300)).unwrap().len(),
            MAX_NAME_LEN
        );
    }
}
