//! Keywords of a file name, and the DHT key under which a node announces each one.
//!
//! The same function splits names when a node publishes and splits the words a user
//! types when it searches, so both sides agree on letter case, Unicode forms and where
//! words end. The steps, in order:
//!
//! 1. Unicode normalization to NFC, so a name written decomposed (as macOS file systems
//!    hand them out) gives the same words as the same name typed composed.
//! 2. Unicode lower-casing (`char::to_lowercase`, full mappings: `Straße` → `straße`,
//!    `ΣΟΦΊΑ` → `σοφία`... per character, without language-specific rules).
//! 3. Splitting on every character that is not a letter or digit (`char::is_alphanumeric`:
//!    Unicode Alphabetic or Numeric). A combining mark that follows a letter or digit
//!    stays in the word, so scripts whose vowel signs are marks are not cut apart.
//! 4. Keeping words of at least [`MIN_KEYWORD_CHARS`] characters; a word longer than
//!    [`MAX_KEYWORD_CHARS`] characters is cut to that many.
//! 5. Dropping repeats, keeping first appearance order, and at most [`MAX_KEYWORDS`]
//!    words per name.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Fewest characters (Unicode scalar values) of a keyword.
pub const MIN_KEYWORD_CHARS: usize = 3;
/// Most characters of a keyword; longer words are cut to this length.
pub const MAX_KEYWORD_CHARS: usize = 64;
/// Most bytes of a keyword: [`MAX_KEYWORD_CHARS`] characters of at most 4 bytes.
pub const MAX_KEYWORD_LEN: usize = MAX_KEYWORD_CHARS * 4;
/// Most keywords taken from one file name.
pub const MAX_KEYWORDS: usize = 16;
/// The longest name [`keywords`] looks at; bytes past it (cut at a character boundary)
/// are ignored, so a huge string costs no more than this.
pub const MAX_KEYWORD_INPUT_LEN: usize = 4096;
/// What the BLAKE3 hash of a keyword key starts with, before the keyword's UTF-8 bytes.
pub const KEYWORD_KEY_DOMAIN: &[u8] = b"p2pd keyword v1\0";
/// The multihash code of BLAKE3, as in file keys.
const MULTIHASH_BLAKE3: u8 = 0x1e;

/// The keywords of `name`, as the module documentation describes: at most
/// [`MAX_KEYWORDS`], each a lower-case NFC string of 3 to 64 characters, no repeats, in
/// order of first appearance.
pub fn keywords(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in all_words(name) {
        if out.len() == MAX_KEYWORDS {
            break;
        }
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// Whether `word` is a keyword exactly as [`keywords`] would produce it (so a responder
/// can compare it with its own words without normalizing again).
pub fn is_keyword(word: &str) -> bool {
    word.len() <= MAX_KEYWORD_LEN && keywords(word).first().map(String::as_str) == Some(word)
}

/// Every distinct word of `name` that [`name_matches`] looks at: the words of
/// [`keywords`] without its limit of [`MAX_KEYWORDS`], in order of first appearance (a
/// responder indexes these, so that a name is found by any of its words). At most
/// [`MAX_KEYWORD_INPUT_LEN`] / 4 words, since each takes at least 3 characters and a
/// separator.
pub fn name_words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in all_words(name) {
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// Whether every word of `query` is a word of `name`. Unlike [`keywords`], all words of
/// the name count here, not only the first 16, so a name is matched on every word it has.
/// An empty query matches nothing.
pub fn name_matches(name: &str, query: &[String]) -> bool {
    if query.is_empty() {
        return false;
    }
    let words: Vec<String> = all_words(name).collect();
    query.iter().all(|q| words.contains(q))
}

/// The Kademlia record key of a keyword: the 34 bytes `0x1e 0x20` followed by
/// `BLAKE3(KEYWORD_KEY_DOMAIN ‖ word)`, the same multihash shape as a file's provider key
/// (`Cid::multihash_bytes`), so a node announces and looks it up the same way.
pub fn keyword_key(word: &str) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(KEYWORD_KEY_DOMAIN);
    hasher.update(word.as_bytes());
    let mut key = Vec::with_capacity(34);
    key.push(MULTIHASH_BLAKE3);
    key.push(32);
    key.extend_from_slice(hasher.finalize().as_bytes());
    key
}

/// Every word of `name` that is long enough, normalized and cut, repeats included.
fn all_words(name: &str) -> impl Iterator<Item = String> + '_ {
    let name = cut_at_char_boundary(name, MAX_KEYWORD_INPUT_LEN);
    // NFC again after lower-casing: a lower-case letter may compose with a mark that
    // its upper-case form did not, and the result must be its own normal form.
    let lowered: String = name
        .nfc()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .nfc()
        .collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for c in lowered.chars() {
        if c.is_alphanumeric() || (!word.is_empty() && is_combining_mark(c)) {
            word.push(c);
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.into_iter().filter_map(|w| {
        let chars = w.chars().count();
        if chars < MIN_KEYWORD_CHARS {
            None
        } else if chars > MAX_KEYWORD_CHARS {
            Some(w.chars().take(MAX_KEYWORD_CHARS).collect())
        } else {
            Some(w)
        }
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    fn words(name: &str) -> Vec<String> {
        keywords(name)
    }

    #[test]
    fn splits_lowercases_and_drops_short_words() {
        assert_eq!(
            words("The_Matrix.1999.1080p.BluRay.x264-GROUP.mkv"),
            ["the", "matrix", "1999", "1080p", "bluray", "x264", "group", "mkv"]
        );
        assert_eq!(words("a b cd"), Vec::<&str>::new());
        assert_eq!(
            words("  Holiday   PHOTOS!! holiday "),
            ["holiday", "photos"]
        );
        assert_eq!(words(""), Vec::<&str>::new());
    }

    #[test]
    fn is_unicode_aware() {
        assert_eq!(
            words("Straße nach ÖSTERREICH"),
            ["straße", "nach", "österreich"]
        );
        assert_eq!(words("ΣΟΦΊΑ και ζωή"), ["σοφία", "και", "ζωή"]);
        assert_eq!(
            words("Мастер и Маргарита.epub"),
            ["мастер", "маргарита", "epub"]
        );
        // Digits of other scripts are digits; CJK ideographs are letters with no spaces.
        assert_eq!(words("第一章 ١٢٣"), ["第一章", "١٢٣"]);
        // Decomposed (NFD) and composed (NFC) spellings give the same word.
        assert_eq!(words("cafe\u{301} noir"), words("café noir"));
        assert_eq!(words("CAFE\u{301}"), ["café"]);
        // Devanagari vowel signs and virama are combining marks: the word stays whole.
        assert_eq!(words("हिन्दी गाना"), ["हिन्दी", "गाना"]);
        // Emoji and punctuation separate words.
        assert_eq!(words("rock🎸roll—live"), ["rock", "roll", "live"]);
    }

    #[test]
    fn keeps_at_most_16_in_first_appearance_order() {
        let name: Vec<String> = (0..40).map(|i| format!("word{i:02}")).collect();
        let name = name.join(" ");
        let got = keywords(&name);
        assert_eq!(got.len(), MAX_KEYWORDS);
        assert_eq!(got[0], "word00");
        assert_eq!(got[15], "word15");
        // Repeats do not use up the 16.
        let repeated = format!("zzz zzz zzz {name}");
        assert_eq!(keywords(&repeated)[1], "word00");
        assert_eq!(keywords(&repeated).len(), MAX_KEYWORDS);
    }

    #[test]
    fn long_words_are_cut_and_long_input_is_bounded() {
        let long = "é".repeat(100);
        let got = keywords(&long);
        assert_eq!(got, vec!["é".repeat(MAX_KEYWORD_CHARS)]);
        assert!(is_keyword(&got[0]));
        let huge = "x".repeat(1 << 20);
        assert_eq!(keywords(&huge).len(), 1);
        // A 3-byte character cut at the input limit does not panic.
        let edge = format!("{}€€€", "a".repeat(MAX_KEYWORD_INPUT_LEN - 1));
        assert_eq!(keywords(&edge).len(), 1);
    }

    #[test]
    fn is_keyword_accepts_only_normal_forms() {
        for ok in ["abc", "österreich", "第一章", "x264"] {
            assert!(is_keyword(ok), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "a b c",
            "abc def",
            "",
            "cafe\u{301}",
            "abc.",
            " abc",
        ] {
            assert!(!is_keyword(bad), "{bad:?}");
        }
    }

    #[test]
    fn matching_needs_every_word() {
        let name = "Holiday Photos 2024 Greece.zip";
        let q = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(name_matches(name, &q(&["holiday"])));
        assert!(name_matches(name, &q(&["greece", "photos"])));
        assert!(!name_matches(name, &q(&["greece", "italy"])));
        assert!(!name_matches(name, &q(&["holi"])));
        assert!(!name_matches(name, &[]));
        // Words past the first 16 still match.
        let long: Vec<String> = (0..20).map(|i| format!("w{i:03}")).collect();
        assert!(name_matches(&long.join("-"), &q(&["w019"])));
        // name_words holds them all, once each; keywords only the first 16.
        let repeated = format!("{} w000", long.join("-"));
        assert_eq!(name_words(&repeated), long);
        assert_eq!(keywords(&repeated), long[..MAX_KEYWORDS].to_vec());
        for word in name_words(name) {
            assert!(name_matches(name, &[word]));
        }
    }

    #[test]
    fn keyword_key_is_a_blake3_multihash_with_the_domain() {
        let key = keyword_key("holiday");
        assert_eq!(key.len(), 34);
        assert_eq!(&key[..2], &[0x1e, 0x20]);
        let expected = blake3::hash(b"p2pd keyword v1\0holiday");
        assert_eq!(&key[2..], expected.as_bytes());
        assert_eq!(
            HEXLOWER.encode(&key),
            "1e20".to_string() + &HEXLOWER.encode(expected.as_bytes())
        );
        assert_ne!(keyword_key("holiday"), keyword_key("holidays"));
    }
}
