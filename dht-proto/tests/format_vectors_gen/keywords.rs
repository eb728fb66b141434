//! Vectors of keyword search (`vectors/keywords.json`): keyword extraction and keys.

use super::*;

pub(super) fn keyword_vectors() -> Vec<Value> {
    let cases = [
        (
            "words, digits and separators",
            "The_Matrix.1999.1080p.BluRay.x264-GROUP.mkv",
        ),
        (
            "repeats and short words",
            "  Holiday   PHOTOS!! holiday a bc ",
        ),
        ("German and capital umlaut", "Straße nach ÖSTERREICH"),
        ("Greek with final sigma", "ΣΟΦΊΑ και ζωή"),
        ("decomposed accent (NFD)", "cafe\u{301} noir"),
        ("Devanagari marks stay in the word", "हिन्दी गाना"),
        ("CJK and Arabic-Indic digits", "第一章 ١٢٣"),
        ("emoji and dash separate", "rock🎸roll—live"),
        ("no keyword", "a b cd"),
        ("empty", ""),
        (
            "more than 16 words",
            "w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w15 w16 w17 w18",
        ),
        ("a 70-character word is cut to 64", &"abcdefghij".repeat(7)),
    ];
    cases
        .iter()
        .map(|(name, input)| {
            let words = keywords(input);
            let keys: Vec<String> = words.iter().map(|w| hex(&keyword_key(w))).collect();
            json!({ "name": name, "input": input, "keywords": words, "keyword_keys": keys })
        })
        .collect()
}
